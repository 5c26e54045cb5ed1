package gamelift_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/gamelift"
	"github.com/aws/aws-sdk-go-v2/service/gamelift/types"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/controllers"
	"github.com/playersessions/operator/internal/localcp"
	"github.com/playersessions/operator/internal/manager"
	"github.com/playersessions/operator/internal/testenv"
)

// TestQueuesAndPlacements through aws-sdk-go-v2: queues created, described, updated and deleted; a
// placement skips a fleet that cannot take a game session (its computes have no idle process) for the
// next, is FULFILLED once the game session is ACTIVE with its players reserved together, and cannot be
// stopped then; one stopped while PENDING is CANCELLED, one that no destination takes is TIMED_OUT; the
// manager restarted while one is PENDING places it once. Every bad field is InvalidRequestException.
func TestQueuesAndPlacements(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	cp := testenv.ControlPlane(t, localcp.Options{})
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	opts := manager.Options{Controllers: controllers.DefaultOptions(), MetricsAddr: "0", ProbeAddr: "0", GameLiftAddr: addr}
	opts.Controllers.PlayerSessionTimeout = time.Hour
	m := testenv.StartManager(t, cp, opts)
	admin, err := client.New(cp.Config, client.Options{Scheme: manager.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	e := &env{url: "http://" + addr, admin: admin}
	e.tenant(t, "games", "AKIDQUEUE", "secret-q")
	c := e.sdk("AKIDQUEUE", "secret-q")
	g.Eventually(func() string {
		_, err := c.DescribeGameSessionQueues(ctx, &gamelift.DescribeGameSessionQueuesInput{})
		return errText(err)
	}).WithTimeout(20 * time.Second).Should(BeEmpty())

	// fleet-full has a registered compute and no process: it cannot take a game session.
	_, err = c.RegisterCompute(ctx, &gamelift.RegisterComputeInput{FleetId: aws.String("fleet-full"), ComputeName: aws.String("c1"), IpAddress: aws.String("10.0.0.9")})
	g.Expect(errText(err)).To(BeEmpty())
	dest := func(fleets ...string) []types.GameSessionQueueDestination {
		var out []types.GameSessionQueueDestination
		for _, f := range fleets {
			out = append(out, types.GameSessionQueueDestination{DestinationArn: aws.String("arn:aws:gamelift:us-east-1:123456789012:fleet/" + f)})
		}
		return out
	}
	q, err := c.CreateGameSessionQueue(ctx, &gamelift.CreateGameSessionQueueInput{Name: aws.String("Main-Queue"), Destinations: dest("fleet-full", "fleet-open"),
		PlayerLatencyPolicies: []types.PlayerLatencyPolicy{{MaximumIndividualPlayerLatencyMilliseconds: aws.Int32(100), PolicyDurationSeconds: aws.Int32(30)}}})
	g.Expect(errText(err)).To(BeEmpty())
	g.Expect(aws.ToInt32(q.GameSessionQueue.TimeoutInSeconds)).To(BeEquivalentTo(600))
	g.Expect(aws.ToString(q.GameSessionQueue.GameSessionQueueArn)).To(HaveSuffix(":gamesessionqueue/Main-Queue"))
	for _, name := range []string{"Short-Queue", "Stuck-Queue", "Gone-Queue"} {
		_, err = c.CreateGameSessionQueue(ctx, &gamelift.CreateGameSessionQueueInput{Name: aws.String(name), Destinations: dest("fleet-full"), TimeoutInSeconds: aws.Int32(600)})
		g.Expect(errText(err)).To(BeEmpty())
	}
	upd, err := c.UpdateGameSessionQueue(ctx, &gamelift.UpdateGameSessionQueueInput{Name: aws.String("Short-Queue"), TimeoutInSeconds: aws.Int32(2)})
	g.Expect(errText(err)).To(BeEmpty())
	g.Expect(aws.ToInt32(upd.GameSessionQueue.TimeoutInSeconds)).To(BeEquivalentTo(2))
	g.Expect(upd.GameSessionQueue.Destinations).To(HaveLen(1), "an update keeps what it does not name")
	g.Eventually(func(g Gomega) {
		all, err := c.DescribeGameSessionQueues(ctx, &gamelift.DescribeGameSessionQueuesInput{Limit: aws.Int32(2)})
		g.Expect(errText(err)).To(BeEmpty())
		g.Expect(all.GameSessionQueues).To(HaveLen(2))
		g.Expect(aws.ToString(all.GameSessionQueues[0].Name)).To(Equal("Gone-Queue"))
		g.Expect(all.NextToken).NotTo(BeNil())
		rest, err := c.DescribeGameSessionQueues(ctx, &gamelift.DescribeGameSessionQueuesInput{NextToken: all.NextToken})
		g.Expect(errText(err)).To(BeEmpty())
		var names []string
		for _, q := range rest.GameSessionQueues {
			names = append(names, aws.ToString(q.Name))
		}
		g.Expect(names).To(Equal([]string{"Short-Queue", "Stuck-Queue"}))
	}).WithTimeout(20 * time.Second).Should(Succeed())
	_, err = c.DeleteGameSessionQueue(ctx, &gamelift.DeleteGameSessionQueueInput{Name: aws.String("Gone-Queue")})
	g.Expect(errText(err)).To(BeEmpty())
	g.Eventually(func() string {
		_, err := c.DescribeGameSessionQueues(ctx, &gamelift.DescribeGameSessionQueuesInput{Names: []string{"Gone-Queue"}})
		return errorCode(err)
	}).WithTimeout(20 * time.Second).Should(Equal("NotFoundException"))

	// A placement: fleet-full cannot take it; fleet-open does. Its players are reserved once it is ACTIVE.
	start, err := c.StartGameSessionPlacement(ctx, &gamelift.StartGameSessionPlacementInput{PlacementId: aws.String("Match-1"), GameSessionQueueName: aws.String("Main-Queue"),
		MaximumPlayerSessionCount: aws.Int32(4), GameSessionName: aws.String("duel"), GameProperties: []types.GameProperty{{Key: aws.String("mode"), Value: aws.String("duel")}},
		DesiredPlayerSessions: []types.DesiredPlayerSession{{PlayerId: aws.String("ann"), PlayerData: aws.String("red")}, {PlayerId: aws.String("bob")}},
		PlayerLatencies:       []types.PlayerLatency{{PlayerId: aws.String("ann"), RegionIdentifier: aws.String("us-east-1"), LatencyInMilliseconds: aws.Float32(20)}}})
	g.Expect(errText(err)).To(BeEmpty())
	g.Expect(start.GameSessionPlacement.Status).To(Equal(types.GameSessionPlacementStatePending))
	var placed gamev1.GameSession
	g.Eventually(func(g Gomega) {
		var list gamev1.GameSessionList
		g.Expect(admin.List(ctx, &list, client.InNamespace("games"), client.HasLabels{gamev1.PlacementLabel})).To(Succeed())
		g.Expect(list.Items).To(HaveLen(1))
		placed = list.Items[0]
		g.Expect(placed.Status.GameSessionID).NotTo(BeEmpty())
	}).WithTimeout(20 * time.Second).Should(Succeed())
	g.Expect(placed.Spec.FleetID).To(Equal("fleet-open"))
	g.Expect(admin.Status().Patch(ctx, &placed, client.RawPatch("application/merge-patch+json", []byte(`{"status":{"status":"ACTIVE","ipAddress":"10.1.1.1","port":7000}}`)))).To(Succeed())
	var done *types.GameSessionPlacement
	g.Eventually(func(g Gomega) {
		out, err := c.DescribeGameSessionPlacement(ctx, &gamelift.DescribeGameSessionPlacementInput{PlacementId: aws.String("Match-1")})
		g.Expect(errText(err)).To(BeEmpty())
		done = out.GameSessionPlacement
		g.Expect(done.Status).To(Equal(types.GameSessionPlacementStateFulfilled))
	}).WithTimeout(20 * time.Second).Should(Succeed())
	g.Expect(aws.ToString(done.GameSessionId)).To(Equal(placed.Status.GameSessionID))
	g.Expect(fmt.Sprint(aws.ToString(done.IpAddress), ":", aws.ToInt32(done.Port))).To(Equal("10.1.1.1:7000"))
	g.Expect(done.PlacedPlayerSessions).To(HaveLen(2))
	g.Expect(done.PlayerLatencies).To(HaveLen(1))
	g.Expect(done.EndTime).NotTo(BeNil())
	for _, pp := range done.PlacedPlayerSessions {
		ps, err := c.DescribePlayerSessions(ctx, &gamelift.DescribePlayerSessionsInput{PlayerSessionId: pp.PlayerSessionId})
		g.Expect(errText(err)).To(BeEmpty())
		g.Expect(ps.PlayerSessions).To(HaveLen(1))
		g.Expect(ps.PlayerSessions[0].Status).To(Equal(types.PlayerSessionStatusReserved))
		g.Expect(aws.ToString(ps.PlayerSessions[0].PlayerId)).To(Equal(aws.ToString(pp.PlayerId)))
	}
	_, err = c.StopGameSessionPlacement(ctx, &gamelift.StopGameSessionPlacementInput{PlacementId: aws.String("Match-1")})
	g.Expect(errorCode(err)).To(Equal("InvalidRequestException"), "a FULFILLED placement cannot be stopped")

	// Stopped while PENDING: CANCELLED. Nothing takes it before its timeout: TIMED_OUT.
	for _, id := range []string{"Stopped-1", "Late-1"} {
		queue := map[string]string{"Stopped-1": "Stuck-Queue", "Late-1": "Short-Queue"}[id]
		_, err := c.StartGameSessionPlacement(ctx, &gamelift.StartGameSessionPlacementInput{PlacementId: aws.String(id), GameSessionQueueName: aws.String(queue), MaximumPlayerSessionCount: aws.Int32(2)})
		g.Expect(errText(err)).To(BeEmpty())
	}
	g.Eventually(func() string {
		out, err := c.StopGameSessionPlacement(ctx, &gamelift.StopGameSessionPlacementInput{PlacementId: aws.String("Stopped-1")})
		if err != nil {
			return errText(err)
		}
		return string(out.GameSessionPlacement.Status)
	}).WithTimeout(20 * time.Second).Should(Equal("CANCELLED"))
	g.Eventually(func() string {
		out, err := c.DescribeGameSessionPlacement(ctx, &gamelift.DescribeGameSessionPlacementInput{PlacementId: aws.String("Late-1")})
		if err != nil {
			return errText(err)
		}
		return string(out.GameSessionPlacement.Status)
	}).WithTimeout(20 * time.Second).Should(Equal("TIMED_OUT"))

	// The manager stops while a placement is PENDING (nothing can take it); a destination that can is
	// added meanwhile; the next manager places it, once.
	_, err = c.StartGameSessionPlacement(ctx, &gamelift.StartGameSessionPlacementInput{PlacementId: aws.String("Across-Restart"), GameSessionQueueName: aws.String("Stuck-Queue"),
		MaximumPlayerSessionCount: aws.Int32(2), DesiredPlayerSessions: []types.DesiredPlayerSession{{PlayerId: aws.String("cid")}}})
	g.Expect(errText(err)).To(BeEmpty())
	g.Eventually(func(g Gomega) {
		var list gamev1.GameSessionPlacementList
		g.Expect(admin.List(ctx, &list, client.InNamespace("games"))).To(Succeed())
		for _, p := range list.Items {
			if p.Spec.PlacementID == "Across-Restart" {
				g.Expect(p.Status.Status).To(Equal(gamev1.PlacementPending))
				g.Expect(p.Status.Message).To(ContainSubstring("No destination"))
			}
		}
	}).WithTimeout(20 * time.Second).Should(Succeed())
	m.Stop()
	var queues gamev1.GameSessionQueueList
	g.Expect(admin.List(ctx, &queues, client.InNamespace("games"))).To(Succeed())
	for i := range queues.Items {
		if queues.Items[i].Spec.Name == "Stuck-Queue" {
			queues.Items[i].Spec.Destinations = append(queues.Items[i].Spec.Destinations, gamev1.QueueDestination{DestinationArn: "fleet-open"})
			g.Expect(admin.Update(ctx, &queues.Items[i])).To(Succeed())
		}
	}
	testenv.StartManager(t, cp, opts)
	var again gamev1.GameSession
	g.Eventually(func(g Gomega) {
		var list gamev1.GameSessionList
		g.Expect(admin.List(ctx, &list, client.InNamespace("games"), client.MatchingLabels{gamev1.PlacementLabel: placementObject(g, admin, "Across-Restart")})).To(Succeed())
		g.Expect(list.Items).To(HaveLen(1))
		again = list.Items[0]
		g.Expect(again.Status.GameSessionID).NotTo(BeEmpty())
	}).WithTimeout(30 * time.Second).Should(Succeed())
	g.Expect(admin.Status().Patch(ctx, &again, client.RawPatch("application/merge-patch+json", []byte(`{"status":{"status":"ACTIVE","ipAddress":"10.1.1.2","port":7000}}`)))).To(Succeed())
	g.Eventually(func() string {
		out, err := c.DescribeGameSessionPlacement(ctx, &gamelift.DescribeGameSessionPlacementInput{PlacementId: aws.String("Across-Restart")})
		if err != nil {
			return errText(err)
		}
		return string(out.GameSessionPlacement.Status)
	}).WithTimeout(30 * time.Second).Should(Equal("FULFILLED"))
	var list gamev1.GameSessionList
	g.Expect(admin.List(ctx, &list, client.InNamespace("games"), client.HasLabels{gamev1.PlacementLabel})).To(Succeed())
	g.Expect(list.Items).To(HaveLen(2), "one game session per fulfilled placement, none for the others")

	// Bad input.
	for name, in := range map[string]*gamelift.StartGameSessionPlacementInput{
		"bad id":           {PlacementId: aws.String("a_b"), GameSessionQueueName: aws.String("Main-Queue"), MaximumPlayerSessionCount: aws.Int32(2)},
		"long id":          {PlacementId: aws.String(strings.Repeat("a", 49)), GameSessionQueueName: aws.String("Main-Queue"), MaximumPlayerSessionCount: aws.Int32(2)},
		"id taken":         {PlacementId: aws.String("Match-1"), GameSessionQueueName: aws.String("Main-Queue"), MaximumPlayerSessionCount: aws.Int32(2)},
		"players > seats":  {PlacementId: aws.String("x2"), GameSessionQueueName: aws.String("Main-Queue"), MaximumPlayerSessionCount: aws.Int32(1), DesiredPlayerSessions: []types.DesiredPlayerSession{{PlayerId: aws.String("a")}, {PlayerId: aws.String("b")}}},
		"long data":        {PlacementId: aws.String("x3"), GameSessionQueueName: aws.String("Main-Queue"), MaximumPlayerSessionCount: aws.Int32(1), GameSessionData: aws.String(strings.Repeat("d", 262145))},
		"latency+override": {PlacementId: aws.String("x4"), GameSessionQueueName: aws.String("Main-Queue"), MaximumPlayerSessionCount: aws.Int32(1), PlayerLatencies: []types.PlayerLatency{{PlayerId: aws.String("a"), RegionIdentifier: aws.String("r"), LatencyInMilliseconds: aws.Float32(1)}}, PriorityConfigurationOverride: &types.PriorityConfigurationOverride{LocationOrder: []string{"us-east-1"}}},
		"player twice":     {PlacementId: aws.String("x5"), GameSessionQueueName: aws.String("Main-Queue"), MaximumPlayerSessionCount: aws.Int32(2), DesiredPlayerSessions: []types.DesiredPlayerSession{{PlayerId: aws.String("a")}, {PlayerId: aws.String("a")}}},
	} {
		_, err := c.StartGameSessionPlacement(ctx, in)
		g.Expect(errorCode(err)).To(Equal("InvalidRequestException"), name)
	}
	_, err = c.StartGameSessionPlacement(ctx, &gamelift.StartGameSessionPlacementInput{PlacementId: aws.String("x6"), GameSessionQueueName: aws.String("No-Queue"), MaximumPlayerSessionCount: aws.Int32(2)})
	g.Expect(errorCode(err)).To(Equal("NotFoundException"))
	_, err = c.DescribeGameSessionPlacement(ctx, &gamelift.DescribeGameSessionPlacementInput{PlacementId: aws.String("never")})
	g.Expect(errorCode(err)).To(Equal("NotFoundException"))
	for name, in := range map[string]*gamelift.CreateGameSessionQueueInput{
		"bad name":     {Name: aws.String("a b")},
		"taken":        {Name: aws.String("Main-Queue")},
		"alias":        {Name: aws.String("q1"), Destinations: []types.GameSessionQueueDestination{{DestinationArn: aws.String("arn:aws:gamelift:us-east-1::alias/alias-1")}}},
		"not a fleet":  {Name: aws.String("q2"), Destinations: []types.GameSessionQueueDestination{{DestinationArn: aws.String("arn:aws:s3:::bucket")}}},
		"negative":     {Name: aws.String("q3"), TimeoutInSeconds: aws.Int32(-1)},
		"priority":     {Name: aws.String("q4"), PriorityConfiguration: &types.PriorityConfiguration{PriorityOrder: []types.PriorityType{"FASTEST"}}},
		"long event":   {Name: aws.String("q5"), CustomEventData: aws.String(strings.Repeat("e", 257))},
		"bad location": {Name: aws.String("q6"), FilterConfiguration: &types.FilterConfiguration{AllowedLocations: []string{"_"}}},
	} {
		_, err := c.CreateGameSessionQueue(ctx, in)
		g.Expect(errorCode(err)).To(Equal("InvalidRequestException"), name)
	}
	_, err = c.UpdateGameSessionQueue(ctx, &gamelift.UpdateGameSessionQueueInput{Name: aws.String("No-Queue")})
	g.Expect(errorCode(err)).To(Equal("NotFoundException"))
}

// placementObject is the object name of the placement of a GameLift id.
func placementObject(g Gomega, c client.Client, id string) string {
	var list gamev1.GameSessionPlacementList
	g.Expect(c.List(context.Background(), &list, client.InNamespace("games"))).To(Succeed())
	for _, p := range list.Items {
		if p.Spec.PlacementID == id {
			return p.Name
		}
	}
	return "none"
}
