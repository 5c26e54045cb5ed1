package gamelift_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/gamelift"
	"github.com/aws/aws-sdk-go-v2/service/gamelift/types"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/controllers"
	gl "github.com/playersessions/operator/internal/gamelift"
	"github.com/playersessions/operator/internal/localcp"
	"github.com/playersessions/operator/internal/manager"
	"github.com/playersessions/operator/internal/testenv"
)

type env struct {
	url   string
	admin client.Client
}

func startEnv(t *testing.T) *env {
	t.Helper()
	cp := testenv.ControlPlane(t, localcp.Options{})
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	opts := manager.Options{Controllers: controllers.DefaultOptions(), MetricsAddr: "0", ProbeAddr: "0", GameLiftAddr: addr}
	opts.Controllers.PlayerSessionTimeout = time.Hour
	testenv.StartManager(t, cp, opts)
	admin, err := client.New(cp.Config, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return &env{url: "http://" + addr, admin: admin}
}

func (e *env) tenant(t *testing.T, ns, keyID, secret string) {
	t.Helper()
	ctx := context.Background()
	if err := e.admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	if err := gl.CreateAccessKey(ctx, e.admin, gl.DefaultKeyNamespace, "gamelift-key-"+ns, ns, keyID, secret); err != nil {
		t.Fatal(err)
	}
}

func (e *env) sdk(keyID, secret string) *gamelift.Client {
	return gamelift.New(gamelift.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(e.url),
		Credentials:      credentials.NewStaticCredentialsProvider(keyID, secret, ""),
		RetryMaxAttempts: 1,
	})
}

// errText is err's message: gomega must not format an SDK error itself, whose response holds live
// transport state (a data race under -race).
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func errorCode(err error) string {
	var apiErr interface{ ErrorCode() string }
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return fmt.Sprintf("not an API error: %v", err)
}

// signedJSON sends a raw AWS JSON 1.1 call, signed with SigV4, as a game server without an AWS SDK would.
func (e *env) signedJSON(t *testing.T, keyID, secret, action string, in any) (int, map[string]any) {
	t.Helper()
	body, _ := json.Marshal(in)
	req, _ := http.NewRequest(http.MethodPost, e.url+"/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "GameLift."+action)
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret}, req, hex.EncodeToString(sum[:]), "gamelift", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s: %s", err, raw)
	}
	return resp.StatusCode, out
}

func TestGameLiftEndpoint(t *testing.T) {
	g := NewWithT(t)
	e := startEnv(t)
	ctx := context.Background()
	e.tenant(t, "tenant-a", "AKIDTENANTA", "secret-a")
	e.tenant(t, "tenant-b", "AKIDTENANTB", "secret-b")
	gs := &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant-a", Name: "arena"},
		Spec: gamev1.GameSessionSpec{FleetID: "fleet-a", MaximumPlayerSessionCount: 2, Endpoint: gamev1.Endpoint{IPAddress: "10.0.0.9", Port: 7777}}}
	g.Expect(e.admin.Create(ctx, gs)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(e.admin.Get(ctx, client.ObjectKeyFromObject(gs), gs)).To(Succeed())
		g.Expect(gs.Status.Status).To(Equal(gamev1.GameSessionActive))
	}).WithTimeout(20 * time.Second).Should(Succeed())
	gsid := gs.Status.GameSessionID
	a := e.sdk("AKIDTENANTA", "secret-a")

	// The access key Secret reaches the cache asynchronously.
	g.Eventually(func() string {
		_, err := a.DescribeGameSessions(ctx, &gamelift.DescribeGameSessionsInput{GameSessionId: aws.String(gsid)})
		return errText(err)
	}).WithTimeout(20*time.Second).Should(BeEmpty(), "the access key and the game session reach the manager's cache")

	// CreatePlayerSession and CreatePlayerSessions (Smithy RPC v2 CBOR, from aws-sdk-go-v2).
	one, err := a.CreatePlayerSession(ctx, &gamelift.CreatePlayerSessionInput{GameSessionId: aws.String(gsid), PlayerId: aws.String("alice"), PlayerData: aws.String(`{"team":"red"}`)})
	g.Expect(errText(err)).To(BeEmpty())
	alice := one.PlayerSession
	g.Expect(alice.Status).To(Equal(types.PlayerSessionStatusReserved))
	g.Expect(aws.ToString(alice.PlayerSessionId)).To(HavePrefix("psess-"))
	g.Expect(aws.ToString(alice.GameSessionId)).To(Equal(gsid))
	g.Expect(aws.ToString(alice.IpAddress)).To(Equal("10.0.0.9"))
	g.Expect(aws.ToInt32(alice.Port)).To(BeEquivalentTo(7777))
	g.Expect(aws.ToString(alice.PlayerData)).To(Equal(`{"team":"red"}`))
	g.Expect(*alice.CreationTime).To(BeTemporally("~", time.Now(), 10*time.Second))
	many, err := a.CreatePlayerSessions(ctx, &gamelift.CreatePlayerSessionsInput{GameSessionId: aws.String(gsid), PlayerIds: []string{"bob"}})
	g.Expect(errText(err)).To(BeEmpty())
	g.Expect(many.PlayerSessions).To(HaveLen(1))
	_, err = a.CreatePlayerSession(ctx, &gamelift.CreatePlayerSessionInput{GameSessionId: aws.String(gsid), PlayerId: aws.String("carol")})
	g.Expect(errorCode(err)).To(Equal("GameSessionFullException"))
	var objects gamev1.PlayerSessionList
	g.Eventually(func(g Gomega) {
		g.Expect(e.admin.List(ctx, &objects, client.InNamespace("tenant-a"))).To(Succeed())
		g.Expect(objects.Items).To(HaveLen(2), "a refused call leaves no player session behind")
	}).WithTimeout(10 * time.Second).Should(Succeed())
	_, err = a.CreatePlayerSession(ctx, &gamelift.CreatePlayerSessionInput{GameSessionId: aws.String(gsid + "x"), PlayerId: aws.String("carol")})
	g.Expect(errorCode(err)).To(Equal("NotFoundException"))
	_, err = a.CreatePlayerSessions(ctx, &gamelift.CreatePlayerSessionsInput{GameSessionId: aws.String(gsid), PlayerIds: make([]string, 26)})
	g.Expect(errorCode(err)).To(Equal("InvalidRequestException"))

	// DescribePlayerSessions: each key, the status filter, paging, validation.
	describe := func(in *gamelift.DescribePlayerSessionsInput) ([]types.PlayerSession, *string, error) {
		out, err := a.DescribePlayerSessions(ctx, in)
		if err != nil {
			return nil, nil, err
		}
		return out.PlayerSessions, out.NextToken, nil
	}
	sessions, _, err := describe(&gamelift.DescribePlayerSessionsInput{GameSessionId: aws.String(gsid)})
	g.Expect(errText(err)).To(BeEmpty())
	g.Expect(sessions).To(HaveLen(2))
	sessions, _, err = describe(&gamelift.DescribePlayerSessionsInput{PlayerId: aws.String("alice")})
	g.Expect(errText(err)).To(BeEmpty())
	g.Expect(sessions).To(HaveLen(1))
	g.Expect(aws.ToString(sessions[0].PlayerSessionId)).To(Equal(aws.ToString(alice.PlayerSessionId)))
	sessions, _, err = describe(&gamelift.DescribePlayerSessionsInput{PlayerSessionId: alice.PlayerSessionId, Limit: aws.Int32(0), NextToken: aws.String("ignored")})
	g.Expect(errText(err)).To(BeEmpty(), "Limit and NextToken are ignored with PlayerSessionId")
	g.Expect(sessions).To(HaveLen(1))
	sessions, _, err = describe(&gamelift.DescribePlayerSessionsInput{GameSessionId: aws.String(gsid), PlayerSessionStatusFilter: aws.String("ACTIVE")})
	g.Expect(errText(err)).To(BeEmpty())
	g.Expect(sessions).To(BeEmpty())
	sessions, _, err = describe(&gamelift.DescribePlayerSessionsInput{PlayerId: aws.String("alice"), PlayerSessionStatusFilter: aws.String("ACTIVE")})
	g.Expect(errText(err)).To(BeEmpty())
	g.Expect(sessions).To(HaveLen(1), "the status filter applies only with GameSessionId")
	first, next, err := describe(&gamelift.DescribePlayerSessionsInput{GameSessionId: aws.String(gsid), Limit: aws.Int32(1)})
	g.Expect(errText(err)).To(BeEmpty())
	g.Expect(first).To(HaveLen(1))
	g.Expect(next).NotTo(BeNil())
	second, last, err := describe(&gamelift.DescribePlayerSessionsInput{GameSessionId: aws.String(gsid), Limit: aws.Int32(1), NextToken: next})
	g.Expect(errText(err)).To(BeEmpty())
	g.Expect(second).To(HaveLen(1))
	g.Expect(last).To(BeNil())
	g.Expect(aws.ToString(second[0].PlayerSessionId)).NotTo(Equal(aws.ToString(first[0].PlayerSessionId)))
	for name, in := range map[string]*gamelift.DescribePlayerSessionsInput{
		"none":          {},
		"two":           {GameSessionId: aws.String(gsid), PlayerId: aws.String("alice")},
		"limit 0":       {GameSessionId: aws.String(gsid), Limit: aws.Int32(0)},
		"bad status":    {GameSessionId: aws.String(gsid), PlayerSessionStatusFilter: aws.String("DANCING")},
		"bad id":        {PlayerSessionId: aws.String("nope")},
		"bad token":     {GameSessionId: aws.String(gsid), NextToken: aws.String("garbage")},
		"bad game id":   {GameSessionId: aws.String("not valid!")},
		"long player":   {PlayerId: aws.String(strings.Repeat("p", 1025))},
		"token reused ": {PlayerId: aws.String("alice"), NextToken: next},
	} {
		_, _, err := describe(in)
		g.Expect(errorCode(err)).To(Equal("InvalidRequestException"), name)
	}

	// Tenancy: another namespace's key sees and touches nothing here.
	b := e.sdk("AKIDTENANTB", "secret-b")
	out, err := b.DescribePlayerSessions(ctx, &gamelift.DescribePlayerSessionsInput{GameSessionId: aws.String(gsid)})
	g.Expect(errText(err)).To(BeEmpty())
	g.Expect(out.PlayerSessions).To(BeEmpty())
	_, err = b.CreatePlayerSession(ctx, &gamelift.CreatePlayerSessionInput{GameSessionId: aws.String(gsid), PlayerId: aws.String("mallory")})
	g.Expect(errorCode(err)).To(Equal("NotFoundException"))

	// Authentication failures.
	_, err = e.sdk("AKIDTENANTA", "wrong-secret").DescribePlayerSessions(ctx, &gamelift.DescribePlayerSessionsInput{PlayerId: aws.String("alice")})
	g.Expect(errorCode(err)).To(Equal("UnauthorizedException"))
	_, err = e.sdk("AKIDUNKNOWN", "secret-a").DescribePlayerSessions(ctx, &gamelift.DescribePlayerSessionsInput{PlayerId: aws.String("alice")})
	g.Expect(errorCode(err)).To(Equal("UnauthorizedException"))
	stale := gamelift.New(gamelift.Options{Region: "us-east-1", BaseEndpoint: aws.String(e.url), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTENANTA", "secret-a", "")},
		func(o *gamelift.Options) { o.HTTPSignerV4 = clockSkewSigner{} })
	_, err = stale.DescribePlayerSessions(ctx, &gamelift.DescribePlayerSessionsInput{PlayerId: aws.String("alice")})
	g.Expect(errorCode(err)).To(Equal("UnauthorizedException"))
	resp, err := http.Post(e.url+"/service/GameLift/operation/DescribePlayerSessions", "application/cbor", nil)
	g.Expect(errText(err)).To(BeEmpty())
	resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(400))
	g.Expect(resp.Header.Get("X-Amzn-ErrorType")).To(Equal("UnauthorizedException"))

	// The game server's calls, over AWS JSON 1.1: accept alice, then remove her.
	psid := aws.ToString(alice.PlayerSessionId)
	status, body := e.signedJSON(t, "AKIDTENANTA", "secret-a", "AcceptPlayerSession", map[string]string{"GameSessionId": gsid, "PlayerSessionId": psid})
	g.Expect(status).To(Equal(200), "%v", body)
	g.Expect(body["PlayerSession"].(map[string]any)["Status"]).To(Equal("ACTIVE"))
	g.Expect(body["PlayerSession"].(map[string]any)["CreationTime"]).To(BeNumerically(">", 1.7e9), "epoch seconds")
	status, body = e.signedJSON(t, "AKIDTENANTA", "secret-a", "AcceptPlayerSession", map[string]string{"PlayerSessionId": psid})
	g.Expect(status).To(Equal(400))
	g.Expect(body["__type"]).To(Equal("InvalidRequestException"))
	status, body = e.signedJSON(t, "AKIDTENANTA", "secret-a", "RemovePlayerSession", map[string]string{"PlayerSessionId": psid})
	g.Expect(status).To(Equal(200), "%v", body)
	g.Expect(body["PlayerSession"].(map[string]any)["Status"]).To(Equal("COMPLETED"))
	status, body = e.signedJSON(t, "AKIDTENANTB", "secret-b", "RemovePlayerSession", map[string]string{"PlayerSessionId": aws.ToString(many.PlayerSessions[0].PlayerSessionId)})
	g.Expect(status).To(Equal(400))
	g.Expect(body["__type"]).To(Equal("NotFoundException"), "another tenant's player session")
	status, body = e.signedJSON(t, "AKIDTENANTA", "secret-a", "DescribePlayerSessions", map[string]string{"PlayerSessionId": psid})
	g.Expect(status).To(Equal(200))
	g.Expect(body["PlayerSessions"].([]any)[0].(map[string]any)["Status"]).To(Equal("COMPLETED"))
	status, body = e.signedJSON(t, "AKIDTENANTA", "secret-a", "DanceParty", map[string]string{})
	g.Expect(status).To(Equal(400))
	g.Expect(body["__type"]).To(Equal("UnknownOperationException"))
}

// TestGameServerCallsAreBoundToTheClaim: AcceptPlayerSession and RemovePlayerSession through the endpoint act
// as a game server: the first such call for a game session claims it for the caller's access key
// (status.gameServer), and from then on another key of the same tenant can neither accept nor remove that
// game's players, nor can any key touch a game a game server claimed through kubectl. Two first calls
// racing for one game claim it once. Before, any key of the namespace accepted or removed any player (issue
// 20, finding 1). Backend calls (creating player sessions) are not bound to the claim.
func TestGameServerCallsAreBoundToTheClaim(t *testing.T) {
	g := NewWithT(t)
	e := startEnv(t)
	ctx := context.Background()
	const ns = "team-a"
	e.tenant(t, ns, "AKIDBACKEND", "secret-backend")
	for _, k := range []string{"1", "2"} {
		g.Expect(gl.CreateAccessKey(ctx, e.admin, gl.DefaultKeyNamespace, "gs-"+k, ns, "AKIDGS"+k, "secret-gs"+k)).To(Succeed())
	}
	backend := e.sdk("AKIDBACKEND", "secret-backend")
	games := map[string]*gamev1.GameSession{}
	for _, name := range []string{"arena-1", "arena-2", "arena-3", "arena-4"} {
		gs := &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: gamev1.GameSessionSpec{FleetID: "fleet-a", MaximumPlayerSessionCount: 4, Endpoint: gamev1.Endpoint{IPAddress: "10.0.0.9", Port: 7777}}}
		g.Expect(e.admin.Create(ctx, gs)).To(Succeed())
		g.Eventually(func(g Gomega) {
			g.Expect(e.admin.Get(ctx, client.ObjectKeyFromObject(gs), gs)).To(Succeed())
			g.Expect(gs.Status.Status).To(Equal(gamev1.GameSessionActive))
		}).WithTimeout(20 * time.Second).Should(Succeed())
		games[name] = gs
	}
	player := func(game, id string) string {
		var out *gamelift.CreatePlayerSessionOutput
		g.Eventually(func() (err error) {
			out, err = backend.CreatePlayerSession(ctx, &gamelift.CreatePlayerSessionInput{GameSessionId: aws.String(games[game].Status.GameSessionID), PlayerId: aws.String(id)})
			return err
		}).WithTimeout(20 * time.Second).Should(Succeed())
		return aws.ToString(out.PlayerSession.PlayerSessionId)
	}
	call := func(key, action, psid string) (int, string) {
		status, body := e.signedJSON(t, "AKIDGS"+key, "secret-gs"+key, action, map[string]string{"PlayerSessionId": psid})
		if status != 200 {
			return status, fmt.Sprint(body["__type"], ": ", body["message"])
		}
		return status, ""
	}
	claim := func(game string) string {
		gs := &gamev1.GameSession{}
		g.Expect(e.admin.Get(ctx, client.ObjectKeyFromObject(games[game]), gs)).To(Succeed())
		return gs.Status.GameServer
	}
	p1, p2, p3 := player("arena-1", "p1"), player("arena-1", "p2"), player("arena-2", "p3")

	g.Expect(call("1", "AcceptPlayerSession", p1)).To(Equal(200))
	g.Expect(claim("arena-1")).To(Equal(gl.ClaimPrefix + "AKIDGS1"))
	for _, action := range []string{"AcceptPlayerSession", "RemovePlayerSession"} {
		status, msg := call("2", action, p2)
		g.Expect(status).To(Equal(400), action)
		g.Expect(msg).To(ContainSubstring("InvalidRequestException: Player session " + p2 + " is in game session arena-1"))
		g.Expect(msg).To(ContainSubstring("whose game server is gamelift-access-key:AKIDGS1"))
	}
	status, _ := call("2", "RemovePlayerSession", p1)
	g.Expect(status).To(Equal(400), "another game server cannot remove an accepted player")
	g.Expect(call("2", "AcceptPlayerSession", p3)).To(Equal(200), "a game server claims its own game")
	status, _ = call("1", "RemovePlayerSession", p3)
	g.Expect(status).To(Equal(400))
	g.Expect(call("1", "AcceptPlayerSession", p2)).To(Equal(200))
	g.Expect(call("1", "RemovePlayerSession", p1)).To(Equal(200))

	// A game claimed through kubectl (a game server's first status write) is no access key's.
	p4 := player("arena-3", "p4")
	gs3 := games["arena-3"].DeepCopy()
	g.Expect(e.admin.Status().Patch(ctx, gs3, client.RawPatch(k8stypes.MergePatchType, []byte(`{"status":{"gameServer":"system:serviceaccount:team-a:gs pod=gs-0"}}`)))).To(Succeed())
	g.Eventually(func() int { s, _ := call("1", "AcceptPlayerSession", p4); return s }).WithTimeout(10 * time.Second).Should(Equal(400))

	// The claim is set once: changing it is refused by the API server; clearing it lets another claim.
	err := e.admin.Status().Patch(ctx, gs3, client.RawPatch(k8stypes.MergePatchType, []byte(`{"status":{"gameServer":"someone-else"}}`)))
	g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%v", err)
	g.Expect(err.Error()).To(ContainSubstring("gameServer is claimed once"))
	g.Expect(e.admin.Status().Patch(ctx, gs3, client.RawPatch(k8stypes.MergePatchType, []byte(`{"status":{"gameServer":null}}`)))).To(Succeed())
	g.Eventually(func() int { s, _ := call("2", "AcceptPlayerSession", p4); return s }).WithTimeout(10 * time.Second).Should(Equal(200))

	// Two game servers' first calls for one game, at once: one claims it, the other is refused.
	p5, p6 := player("arena-4", "p5"), player("arena-4", "p6")
	var wg sync.WaitGroup
	statuses := make([]int, 2)
	for i, psid := range []string{p5, p6} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], _ = call(fmt.Sprint(i+1), "AcceptPlayerSession", psid)
		}()
	}
	wg.Wait()
	g.Expect(statuses).To(ConsistOf(200, 400))
	winner := "1"
	if statuses[1] == 200 {
		winner = "2"
	}
	g.Expect(claim("arena-4")).To(Equal(gl.ClaimPrefix + "AKIDGS" + winner))
}

// clockSkewSigner signs as if it were 10 minutes ago.
type clockSkewSigner struct{}

func (clockSkewSigner) SignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, payloadHash, service, region string, _ time.Time, opts ...func(*v4.SignerOptions)) error {
	return v4.NewSigner().SignHTTP(ctx, creds, r, payloadHash, service, region, time.Now().Add(-10*time.Minute), opts...)
}

func TestGameLiftGameSessions(t *testing.T) {
	g := NewWithT(t)
	e := startEnv(t)
	ctx := context.Background()
	e.tenant(t, "games", "AKIDGAMES", "secret-g")
	c := e.sdk("AKIDGAMES", "secret-g")
	g.Eventually(func() string {
		_, err := c.DescribeGameSessions(ctx, &gamelift.DescribeGameSessionsInput{FleetId: aws.String("fleet-x")})
		return errText(err)
	}).WithTimeout(20 * time.Second).Should(BeEmpty())

	var ids []string
	for i := range 3 {
		out, err := c.CreateGameSession(ctx, &gamelift.CreateGameSessionInput{
			FleetId: aws.String("arn:aws:gamelift:us-east-1:123456789012:fleet/fleet-x"), MaximumPlayerSessionCount: aws.Int32(4),
			Name: aws.String(fmt.Sprintf("match %d", i)), GameProperties: []types.GameProperty{{Key: aws.String("map"), Value: aws.String("dust")}},
		})
		g.Expect(errText(err)).To(BeEmpty())
		gs := out.GameSession
		g.Expect(gs.Status).To(Equal(types.GameSessionStatusActivating), "no game server has activated it yet")
		g.Expect(aws.ToString(gs.FleetId)).To(Equal("fleet-x"))
		g.Expect(aws.ToString(gs.GameSessionId)).To(MatchRegexp(`^arn:aws:gamelift:local::gamesession/fleet-x/gsess-`))
		g.Expect(gs.GameProperties).To(HaveLen(1))
		ids = append(ids, aws.ToString(gs.GameSessionId))
	}
	var seventeen []types.GameProperty
	for i := range 17 {
		seventeen = append(seventeen, types.GameProperty{Key: aws.String(fmt.Sprint(i)), Value: aws.String("v")})
	}
	for name, in := range map[string]*gamelift.CreateGameSessionInput{
		"bad fleet":   {FleetId: aws.String("nofleet"), MaximumPlayerSessionCount: aws.Int32(1)},
		"too many":    {FleetId: aws.String("fleet-x"), MaximumPlayerSessionCount: aws.Int32(201)},
		"alias":       {AliasId: aws.String("alias-1"), MaximumPlayerSessionCount: aws.Int32(1)},
		"17 props":    {FleetId: aws.String("fleet-x"), MaximumPlayerSessionCount: aws.Int32(1), GameProperties: seventeen},
		"long data":   {FleetId: aws.String("fleet-x"), MaximumPlayerSessionCount: aws.Int32(1), GameSessionData: aws.String(strings.Repeat("d", 4097))},
		"long prop k": {FleetId: aws.String("fleet-x"), MaximumPlayerSessionCount: aws.Int32(1), GameProperties: []types.GameProperty{{Key: aws.String(strings.Repeat("k", 33)), Value: aws.String("v")}}},
	} {
		_, err := c.CreateGameSession(ctx, in)
		g.Expect(errorCode(err)).To(Equal("InvalidRequestException"), name)
	}

	// The id round-trips; a player session is refused while the game session is ACTIVATING.
	one, err := c.DescribeGameSessions(ctx, &gamelift.DescribeGameSessionsInput{GameSessionId: aws.String(ids[0])})
	g.Expect(errText(err)).To(BeEmpty())
	g.Expect(one.GameSessions).To(HaveLen(1))
	g.Expect(aws.ToString(one.GameSessions[0].Name)).To(Equal("match 0"))
	_, err = c.CreatePlayerSession(ctx, &gamelift.CreatePlayerSessionInput{GameSessionId: aws.String(ids[0]), PlayerId: aws.String("p")})
	g.Expect(errorCode(err)).To(Equal("InvalidGameSessionStatusException"))

	// Paging by fleet.
	var seen []string
	var next *string
	for {
		page, err := c.DescribeGameSessions(ctx, &gamelift.DescribeGameSessionsInput{FleetId: aws.String("fleet-x"), Limit: aws.Int32(2), NextToken: next})
		g.Expect(errText(err)).To(BeEmpty())
		for _, gs := range page.GameSessions {
			seen = append(seen, aws.ToString(gs.GameSessionId))
		}
		if next = page.NextToken; next == nil {
			break
		}
	}
	g.Expect(seen).To(ConsistOf(ids))
	_, err = c.DescribeGameSessions(ctx, &gamelift.DescribeGameSessionsInput{FleetId: aws.String("fleet-y"), NextToken: aws.String("garbage")})
	g.Expect(errorCode(err)).To(Equal("InvalidRequestException"))
	_, err = c.DescribeGameSessions(ctx, &gamelift.DescribeGameSessionsInput{GameSessionId: aws.String(ids[0] + "0")})
	g.Expect(errorCode(err)).To(Equal("NotFoundException"))

	// The game server activates the first one (a status patch); then UpdateGameSession closes it to players.
	var list gamev1.GameSessionList
	g.Expect(e.admin.List(ctx, &list, client.InNamespace("games"))).To(Succeed())
	for i := range list.Items {
		if list.Items[i].Status.GameSessionID == ids[0] {
			gs := &list.Items[i]
			g.Expect(e.admin.Status().Patch(ctx, gs, client.RawPatch("application/merge-patch+json", []byte(`{"status":{"status":"ACTIVE","ipAddress":"10.1.1.1","port":7000}}`)))).To(Succeed())
		}
	}
	g.Eventually(func() string {
		_, err := c.CreatePlayerSession(ctx, &gamelift.CreatePlayerSessionInput{GameSessionId: aws.String(ids[0]), PlayerId: aws.String("early")})
		return errText(err)
	}).WithTimeout(20 * time.Second).Should(BeEmpty())
	upd, err := c.UpdateGameSession(ctx, &gamelift.UpdateGameSessionInput{GameSessionId: aws.String(ids[0]),
		PlayerSessionCreationPolicy: types.PlayerSessionCreationPolicyDenyAll, MaximumPlayerSessionCount: aws.Int32(8), Name: aws.String("renamed")})
	g.Expect(errText(err)).To(BeEmpty())
	g.Expect(aws.ToInt32(upd.GameSession.MaximumPlayerSessionCount)).To(BeEquivalentTo(8))
	g.Expect(upd.GameSession.PlayerSessionCreationPolicy).To(Equal(types.PlayerSessionCreationPolicyDenyAll))
	// The endpoint writes as its own field manager (docs/gitops.md: what an applier should ignore).
	var stored gamev1.GameSessionList
	g.Expect(e.admin.List(ctx, &stored, client.InNamespace("games"))).To(Succeed())
	specOwners := map[string]bool{}
	for _, gs := range stored.Items {
		for _, mf := range gs.ManagedFields {
			if mf.FieldsV1 != nil && strings.Contains(string(mf.FieldsV1.Raw), `"f:maximumPlayerSessionCount"`) {
				specOwners[mf.Manager] = true
			}
		}
	}
	g.Expect(specOwners).To(Equal(map[string]bool{gl.FieldManager: true}))
	g.Eventually(func() string {
		_, err := c.CreatePlayerSession(ctx, &gamelift.CreatePlayerSessionInput{GameSessionId: aws.String(ids[0]), PlayerId: aws.String("late")})
		return errorCode(err)
	}).WithTimeout(20 * time.Second).Should(Equal("GameSessionFullException"))
	_, err = c.UpdateGameSession(ctx, &gamelift.UpdateGameSessionInput{GameSessionId: aws.String(ids[0]), MaximumPlayerSessionCount: aws.Int32(-1)})
	g.Expect(errorCode(err)).To(Equal("InvalidRequestException"))
}

// TestAmbiguousAccessKey: a key id held by two Secrets (of two tenants) is refused for both, exactly as an
// unknown key is, and each Secret gets a Warning event naming both; once one Secret goes, the key works.
func TestAmbiguousAccessKey(t *testing.T) {
	g := NewWithT(t)
	e := startEnv(t)
	ctx := context.Background()
	e.tenant(t, "team-a", "AKIDSHARED", "secret-a")
	c := e.sdk("AKIDSHARED", "secret-a")
	g.Eventually(func() string {
		_, err := c.DescribePlayerSessions(ctx, &gamelift.DescribePlayerSessionsInput{PlayerId: aws.String("alice")})
		return errText(err)
	}).WithTimeout(20 * time.Second).Should(BeEmpty())

	e.tenant(t, "team-b", "AKIDSHARED", "secret-b") // the same key id in another namespace
	var ambiguous string
	g.Eventually(func() string {
		_, err := c.DescribePlayerSessions(ctx, &gamelift.DescribePlayerSessionsInput{PlayerId: aws.String("alice")})
		ambiguous = errText(err)
		return errorCode(err)
	}).WithTimeout(20 * time.Second).Should(Equal("UnauthorizedException"))
	_, err := e.sdk("AKIDSHARED", "secret-b").DescribePlayerSessions(ctx, &gamelift.DescribePlayerSessionsInput{PlayerId: aws.String("alice")})
	g.Expect(errorCode(err)).To(Equal("UnauthorizedException"))
	_, err = e.sdk("AKIDNOBODY", "secret-a").DescribePlayerSessions(ctx, &gamelift.DescribePlayerSessionsInput{PlayerId: aws.String("alice")})
	unknown := errText(err)
	// The same answer, but for the caller's own key id echoed back and the request id.
	strip := func(s string) string {
		return regexp.MustCompile(`RequestID: \S+|AKID[A-Z]+`).ReplaceAllString(s, "")
	}
	g.Expect(strip(ambiguous)).To(Equal(strip(unknown)), "an ambiguous key must read exactly as an unknown one")
	g.Expect(ambiguous).NotTo(ContainSubstring("team-"))

	g.Eventually(func(g Gomega) {
		g.Expect(e.keyEvents(g, "AmbiguousAccessKey")).To(Equal(map[string][]string{
			"gamelift-key-team-a": {"Access key id AKIDSHARED is held by several Secrets (playersessions-system/gamelift-key-team-a, playersessions-system/gamelift-key-team-b): it is refused for all of them until only one holds it"},
			"gamelift-key-team-b": {"Access key id AKIDSHARED is held by several Secrets (playersessions-system/gamelift-key-team-a, playersessions-system/gamelift-key-team-b): it is refused for all of them until only one holds it"},
		}))
	}).WithTimeout(20 * time.Second).Should(Succeed())

	g.Expect(e.admin.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: gl.DefaultKeyNamespace, Name: "gamelift-key-team-b"}})).To(Succeed())
	g.Eventually(func() string {
		_, err := c.DescribePlayerSessions(ctx, &gamelift.DescribePlayerSessionsInput{PlayerId: aws.String("alice")})
		return errText(err)
	}).WithTimeout(20 * time.Second).Should(BeEmpty())
}

// keyEvents are the notes of the Warning events with reason on the Secrets of the key namespace, by Secret.
func (e *env) keyEvents(g Gomega, reason string) map[string][]string {
	var list eventsv1.EventList
	g.Expect(e.admin.List(context.Background(), &list, client.InNamespace(gl.DefaultKeyNamespace))).To(Succeed())
	notes := map[string][]string{}
	for _, ev := range list.Items {
		if ev.Reason == reason && ev.Regarding.Kind == "Secret" && ev.Type == corev1.EventTypeWarning {
			notes[ev.Regarding.Name] = append(notes[ev.Regarding.Name], ev.Note)
		}
	}
	return notes
}

// TestAccessKeysLiveInTheKeyNamespace: an access key is a Secret of the manager's key namespace naming its
// tenant in a label, and its calls act in that tenant's namespace. A labelled Secret anywhere else is no key
// (the manager neither caches nor may read it: finding 4 of docs/security.md); a key without a valid tenant
// is refused as an unknown key would be, with a Warning event on its Secret.
func TestAccessKeysLiveInTheKeyNamespace(t *testing.T) {
	g := NewWithT(t)
	e := startEnv(t)
	ctx := context.Background()
	e.tenant(t, "team-a", "AKIDTEAMA", "secret-a")
	c := e.sdk("AKIDTEAMA", "secret-a")
	g.Expect(e.admin.Create(ctx, &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "arena"},
		Spec: gamev1.GameSessionSpec{FleetID: "fleet-a", MaximumPlayerSessionCount: 2}})).To(Succeed())
	g.Eventually(func() (int, error) {
		out, err := c.DescribeGameSessions(ctx, &gamelift.DescribeGameSessionsInput{FleetId: aws.String("fleet-a")})
		if err != nil {
			return 0, err
		}
		return len(out.GameSessions), nil
	}).WithTimeout(20*time.Second).Should(Equal(1), "the key acts in the namespace its tenant label names")

	planted := gl.NewAccessKey("team-a", "planted", "team-a", "AKIDPLANTED", "secret-p") // the old layout: in the tenant's namespace
	g.Expect(e.admin.Create(ctx, planted)).To(Succeed())
	// Keys written before config/policy/access_keys.yaml, which refuses them now: without its binding.
	g.Expect(e.admin.Delete(ctx, &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "playersessions-access-key-secrets"}})).To(Succeed())
	noTenant := gl.NewAccessKey(gl.DefaultKeyNamespace, "no-tenant", "", "AKIDNOTENANT", "secret-n")
	delete(noTenant.Labels, gl.TenantLabel)
	g.Eventually(func() error { return e.admin.Create(ctx, noTenant) }).WithTimeout(20 * time.Second).Should(Succeed())
	badTenant := gl.NewAccessKey(gl.DefaultKeyNamespace, "bad-tenant", "Team_A", "AKIDBADTENANT", "secret-b")
	g.Expect(e.admin.Create(ctx, badTenant)).To(Succeed())
	for _, k := range []struct{ id, secret string }{{"AKIDPLANTED", "secret-p"}, {"AKIDNOTENANT", "secret-n"}, {"AKIDBADTENANT", "secret-b"}} {
		g.Consistently(func() string {
			_, err := e.sdk(k.id, k.secret).DescribePlayerSessions(ctx, &gamelift.DescribePlayerSessionsInput{PlayerId: aws.String("alice")})
			return errorCode(err)
		}).WithTimeout(2*time.Second).Should(Equal("UnauthorizedException"), k.id)
	}
	g.Eventually(func(g Gomega) {
		events := e.keyEvents(g, "AccessKeyWithoutTenant")
		g.Expect(events).To(HaveLen(2))
		g.Expect(events["no-tenant"]).To(ConsistOf(ContainSubstring("label gamelift.playersessions.dev/tenant must name the namespace it acts in")))
		g.Expect(events["bad-tenant"]).To(ConsistOf(ContainSubstring("a lowercase RFC 1123 label")))
	}).WithTimeout(20 * time.Second).Should(Succeed())
}

// TestCreatePlayerSessionsAllOrNothing: concurrent CreatePlayerSessions calls on one game session each get
// a seat for every player or none, whatever the interleaving; a failed call leaves nothing behind and the
// game session never holds more than its maximum.
func TestCreatePlayerSessionsAllOrNothing(t *testing.T) {
	g := NewWithT(t)
	e := startEnv(t)
	ctx := context.Background()
	e.tenant(t, "tenant-g", "AKIDGROUPS", "secret-g")
	gs := &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant-g", Name: "arena"},
		Spec: gamev1.GameSessionSpec{FleetID: "fleet-g", MaximumPlayerSessionCount: 10, Endpoint: gamev1.Endpoint{IPAddress: "10.0.0.9", Port: 7777}}}
	g.Expect(e.admin.Create(ctx, gs)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(e.admin.Get(ctx, client.ObjectKeyFromObject(gs), gs)).To(Succeed())
		g.Expect(gs.Status.Status).To(Equal(gamev1.GameSessionActive))
	}).WithTimeout(20 * time.Second).Should(Succeed())
	gsid := gs.Status.GameSessionID
	c := e.sdk("AKIDGROUPS", "secret-g")
	g.Eventually(func() string {
		_, err := c.DescribeGameSessions(ctx, &gamelift.DescribeGameSessionsInput{GameSessionId: aws.String(gsid)})
		return errText(err)
	}).WithTimeout(20 * time.Second).Should(BeEmpty())

	// Eight calls of three players for ten seats.
	const calls, size = 8, 3
	results := make([]string, calls)
	returned := make([][]types.PlayerSession, calls)
	done := make(chan int)
	for i := range calls {
		go func() {
			defer func() { done <- i }()
			ids := make([]string, size)
			for j := range ids {
				ids[j] = fmt.Sprintf("call%d-player%d", i, j)
			}
			out, err := c.CreatePlayerSessions(ctx, &gamelift.CreatePlayerSessionsInput{GameSessionId: aws.String(gsid), PlayerIds: ids})
			if err != nil {
				results[i] = errorCode(err)
				return
			}
			results[i], returned[i] = "ok", out.PlayerSessions
		}()
	}
	for range calls {
		<-done
	}
	ok := 0
	for i, r := range results {
		switch r {
		case "ok":
			ok++
			g.Expect(returned[i]).To(HaveLen(size))
			for _, ps := range returned[i] {
				g.Expect(ps.Status).To(Equal(types.PlayerSessionStatusReserved))
			}
		case "GameSessionFullException":
		default:
			t.Errorf("call %d: %s", i, r)
		}
	}
	g.Expect(ok).To(Equal(10/size), "as many whole groups as fit: %v", results)

	// What is left in the cluster: whole groups only, and the ledger within the maximum.
	g.Eventually(func(g Gomega) {
		var list gamev1.PlayerSessionList
		g.Expect(e.admin.List(ctx, &list, client.InNamespace("tenant-g"))).To(Succeed())
		groups := map[string]int{}
		for _, ps := range list.Items {
			g.Expect(ps.Spec.Group).NotTo(BeNil())
			g.Expect(ps.Labels).To(HaveKeyWithValue(gamev1.GroupLabel, ps.Spec.Group.Name))
			g.Expect(ps.Status.Status).To(Equal(gamev1.PlayerSessionReserved))
			groups[ps.Spec.Group.Name]++
		}
		g.Expect(groups).To(HaveLen(ok), "a refused call leaves no player session behind")
		for name, n := range groups {
			g.Expect(n).To(Equal(size), "group %s", name)
		}
		g.Expect(e.admin.Get(ctx, client.ObjectKeyFromObject(gs), gs)).To(Succeed())
		g.Expect(gs.Status.CurrentPlayerSessionCount).To(BeEquivalentTo(ok * size))
	}).WithTimeout(20 * time.Second).Should(Succeed())

	// The last free seat is not taken by part of a group.
	_, err := c.CreatePlayerSessions(ctx, &gamelift.CreatePlayerSessionsInput{GameSessionId: aws.String(gsid), PlayerIds: []string{"x", "y"}})
	g.Expect(errorCode(err)).To(Equal("GameSessionFullException"))
	one, err := c.CreatePlayerSession(ctx, &gamelift.CreatePlayerSessionInput{GameSessionId: aws.String(gsid), PlayerId: aws.String("last")})
	g.Expect(errText(err)).To(BeEmpty())
	g.Expect(one.PlayerSession.Status).To(Equal(types.PlayerSessionStatusReserved))
}

// TestSearchGameSessions: SearchGameSessions through aws-sdk-go-v2 answers the ACTIVE game sessions of the
// fleet that the filter matches, in the sort's order, paged, and follows the seats: a game session filled
// drops out of hasAvailablePlayerSessions=true, and comes back when its maximum grows. Bad expressions and
// fields are InvalidRequestException, an expression's saying where and why; a NextToken serves only its own
// search. DescribeGameSessionDetails pages the fleet's game sessions with their protection policy.
func TestSearchGameSessions(t *testing.T) {
	g := NewWithT(t)
	e := startEnv(t)
	ctx := context.Background()
	e.tenant(t, "games", "AKIDSEARCH", "secret-s")
	c := e.sdk("AKIDSEARCH", "secret-s")
	g.Eventually(func() string {
		_, err := c.SearchGameSessions(ctx, &gamelift.SearchGameSessionsInput{FleetId: aws.String("fleet-s")})
		return errText(err)
	}).WithTimeout(20 * time.Second).Should(BeEmpty())

	ids := map[string]string{} // by name
	for i, mode := range []string{"brawl", "brawl", "ranked", "brawl", "ranked", "brawl"} {
		out, err := c.CreateGameSession(ctx, &gamelift.CreateGameSessionInput{FleetId: aws.String("fleet-s"), MaximumPlayerSessionCount: aws.Int32(2),
			Name: aws.String(fmt.Sprint("game-", i)), GameProperties: []types.GameProperty{{Key: aws.String("mode"), Value: aws.String(mode)}}})
		g.Expect(errText(err)).To(BeEmpty())
		ids[fmt.Sprint("game-", i)] = aws.ToString(out.GameSession.GameSessionId)
	}
	var list gamev1.GameSessionList
	g.Expect(e.admin.List(ctx, &list, client.InNamespace("games"))).To(Succeed())
	for i := range list.Items {
		if list.Items[i].Spec.Name != "game-5" { // game-5 stays ACTIVATING: never searched
			g.Expect(e.admin.Status().Patch(ctx, &list.Items[i], client.RawPatch("application/merge-patch+json", []byte(`{"status":{"status":"ACTIVE","ipAddress":"10.1.1.1","port":7000}}`)))).To(Succeed())
		}
	}
	search := func(g Gomega, filter, sort string, limit int32, next *string) ([]string, *string) {
		in := &gamelift.SearchGameSessionsInput{FleetId: aws.String("arn:aws:gamelift:us-east-1:123456789012:fleet/fleet-s"), NextToken: next}
		if filter != "" {
			in.FilterExpression = aws.String(filter)
		}
		if sort != "" {
			in.SortExpression = aws.String(sort)
		}
		if limit > 0 {
			in.Limit = aws.Int32(limit)
		}
		out, err := c.SearchGameSessions(ctx, in)
		g.Expect(errText(err)).To(BeEmpty())
		var names []string
		for _, gs := range out.GameSessions {
			g.Expect(gs.Status).To(Equal(types.GameSessionStatusActive))
			g.Expect(aws.ToString(gs.GameSessionId)).To(Equal(ids[aws.ToString(gs.Name)]))
			names = append(names, aws.ToString(gs.Name))
		}
		return names, out.NextToken
	}
	g.Eventually(func(g Gomega) {
		names, next := search(g, "hasAvailablePlayerSessions=true", "", 0, nil) // by creation time: here, the same second
		g.Expect(names).To(ConsistOf("game-0", "game-1", "game-2", "game-3", "game-4"))
		g.Expect(next).To(BeNil())
	}).WithTimeout(20 * time.Second).Should(Succeed())

	// game-1 fills up (two seats), game-3 takes one.
	for _, seat := range []struct{ game, player string }{{"game-1", "a"}, {"game-1", "b"}, {"game-3", "c"}} {
		_, err := c.CreatePlayerSession(ctx, &gamelift.CreatePlayerSessionInput{GameSessionId: aws.String(ids[seat.game]), PlayerId: aws.String(seat.player)})
		g.Expect(errText(err)).To(BeEmpty())
	}
	g.Eventually(func(g Gomega) {
		names, _ := search(g, "hasAvailablePlayerSessions=true", "gameSessionName ASC", 0, nil)
		g.Expect(names).To(Equal([]string{"game-0", "game-2", "game-3", "game-4"}))
		names, _ = search(g, "gameSessionProperties.mode = 'brawl' AND playerSessionCount < 2", "gameSessionName DESC", 0, nil)
		g.Expect(names).To(Equal([]string{"game-3", "game-0"}))
		names, _ = search(g, `playerSessionCount > 0 OR gameSessionProperties.mode = "ranked"`, "playerSessionCount DESC", 0, nil)
		g.Expect(names).To(HaveLen(4))
		g.Expect(names[:2]).To(Equal([]string{"game-1", "game-3"}))
		g.Expect(names[2:]).To(ConsistOf("game-2", "game-4"))
	}).WithTimeout(20 * time.Second).Should(Succeed())

	// Pages of two, each token good for its own search only.
	var all []string
	var next *string
	for {
		var names []string
		names, next = search(g, "NOT hasAvailablePlayerSessions = false", "gameSessionName DESC", 2, next)
		g.Expect(len(names)).To(BeNumerically("<=", 2))
		all = append(all, names...)
		if next == nil {
			break
		}
		_, err := c.SearchGameSessions(ctx, &gamelift.SearchGameSessionsInput{FleetId: aws.String("fleet-s"), SortExpression: aws.String("gameSessionName ASC"), NextToken: next})
		g.Expect(errorCode(err)).To(Equal("InvalidRequestException"), "a token of another sort")
	}
	g.Expect(all).To(Equal([]string{"game-4", "game-3", "game-2", "game-0"}))

	// game-1 grows: it has seats again.
	_, err := c.UpdateGameSession(ctx, &gamelift.UpdateGameSessionInput{GameSessionId: aws.String(ids["game-1"]), MaximumPlayerSessionCount: aws.Int32(3)})
	g.Expect(errText(err)).To(BeEmpty())
	g.Eventually(func(g Gomega) {
		names, _ := search(g, "hasAvailablePlayerSessions=true AND maximumSessions >= 3", "", 0, nil)
		g.Expect(names).To(Equal([]string{"game-1"}))
	}).WithTimeout(20 * time.Second).Should(Succeed())

	for name, in := range map[string]*gamelift.SearchGameSessionsInput{
		"no fleet":         {},
		"fleet and alias":  {FleetId: aws.String("fleet-s"), AliasId: aws.String("alias-1")},
		"alias":            {AliasId: aws.String("alias-1")},
		"bad fleet":        {FleetId: aws.String("nofleet")},
		"bad location":     {FleetId: aws.String("fleet-s"), Location: aws.String("_x")},
		"long filter":      {FleetId: aws.String("fleet-s"), FilterExpression: aws.String(strings.Repeat("(", 1025))},
		"limit 0":          {FleetId: aws.String("fleet-s"), Limit: aws.Int32(0)},
		"bad token":        {FleetId: aws.String("fleet-s"), NextToken: aws.String("garbage")},
		"string ordered":   {FleetId: aws.String("fleet-s"), FilterExpression: aws.String("gameSessionName > 'a'")},
		"unknown operand":  {FleetId: aws.String("fleet-s"), FilterExpression: aws.String("players = 1")},
		"no sort order":    {FleetId: aws.String("fleet-s"), SortExpression: aws.String("playerSessionCount")},
		"unknown sort key": {FleetId: aws.String("fleet-s"), SortExpression: aws.String("players ASC")},
	} {
		_, err := c.SearchGameSessions(ctx, in)
		g.Expect(errorCode(err)).To(Equal("InvalidRequestException"), name)
	}
	_, err = c.SearchGameSessions(ctx, &gamelift.SearchGameSessionsInput{FleetId: aws.String("fleet-s"), FilterExpression: aws.String("playerSessionCount < AND")})
	g.Expect(errText(err)).To(ContainSubstring("Invalid FilterExpression at character 22: "))

	// DescribeGameSessionDetails: the fleet's game sessions, ACTIVE ones here, two at a time.
	var details []string
	next = nil
	for {
		out, err := c.DescribeGameSessionDetails(ctx, &gamelift.DescribeGameSessionDetailsInput{FleetId: aws.String("fleet-s"), StatusFilter: aws.String("ACTIVE"), Limit: aws.Int32(2), NextToken: next})
		g.Expect(errText(err)).To(BeEmpty())
		g.Expect(len(out.GameSessionDetails)).To(BeNumerically("<=", 2))
		for _, d := range out.GameSessionDetails {
			g.Expect(d.ProtectionPolicy).To(Equal(types.ProtectionPolicyNoProtection))
			details = append(details, aws.ToString(d.GameSession.Name))
		}
		if next = out.NextToken; next == nil {
			break
		}
	}
	g.Expect(details).To(ConsistOf("game-0", "game-1", "game-2", "game-3", "game-4"))
	_, err = c.DescribeGameSessionDetails(ctx, &gamelift.DescribeGameSessionDetailsInput{FleetId: aws.String("fleet-s"), StatusFilter: aws.String("RUNNING")})
	g.Expect(errorCode(err)).To(Equal("InvalidRequestException"))
}
