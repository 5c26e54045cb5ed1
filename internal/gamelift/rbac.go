package gamelift

// The endpoint shares the manager's identity: it reads access-key Secrets and creates game and player
// sessions. controller-gen reads these markers into config/rbac/role.yaml with the reconcilers' (make
// manifests). Access keys live in the manager's namespace (--gamelift-key-namespace), so the manager may
// read the Secrets of that namespace only, never a tenant's (config/rbac/kustomization.yaml says why).
// +kubebuilder:rbac:groups="",namespace=playersessions-system,resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups=game.playersessions.dev,resources=playersessions,verbs=create
// +kubebuilder:rbac:groups=game.playersessions.dev,resources=gamesessions,verbs=create
// +kubebuilder:rbac:groups=game.playersessions.dev,resources=computes,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=game.playersessions.dev,resources=computes/status,verbs=get;patch;update
// +kubebuilder:rbac:groups=game.playersessions.dev,resources=processclaims,verbs=get;list;watch
// +kubebuilder:rbac:groups=game.playersessions.dev,resources=gamesessionqueues,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=game.playersessions.dev,resources=gamesessionplacements,verbs=get;list;watch;create;patch
