package gamelift

// The endpoint shares the manager's identity: it reads access-key Secrets and creates game and player
// sessions. controller-gen reads these markers into config/rbac/role.yaml with the reconcilers' (make
// manifests). The Secrets rule is cluster-wide because keys live in the tenants' namespaces; the cache reads
// only labelled access-key Secrets (config/rbac/kustomization.yaml says why).
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups=game.playersessions.dev,resources=playersessions,verbs=create
// +kubebuilder:rbac:groups=game.playersessions.dev,resources=gamesessions,verbs=create
