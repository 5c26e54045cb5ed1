// Command gameserver is the example GameLift game server (package game): an unmodified GameLift Server SDK
// v5 game server, pointed at this operator by its environment alone.
//
//	GAMELIFT_SDK_WEBSOCKET_URL=ws://... GAMELIFT_SDK_AUTH_TOKEN=... GAMELIFT_SDK_FLEET_ID=... \
//	GAMELIFT_SDK_HOST_ID=... GAMELIFT_SDK_PROCESS_ID=... go run ./test/gameserver -port 7777
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/playersessions/operator/test/gameserver/game"
)

func main() {
	port := flag.Int("port", 7777, "TCP port players connect to.")
	flag.Parse()
	l, err := net.Listen("tcp", fmt.Sprintf(":%d", *port))
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := game.Run(ctx, game.Options{Listener: l, Log: log.New(os.Stdout, "", log.LstdFlags)}); err != nil {
		log.Fatal(err)
	}
}
