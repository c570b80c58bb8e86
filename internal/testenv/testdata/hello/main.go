// Command hello announces a made-up address and waits to be stopped: the
// process testenv's tests start.
package main

import (
	"fmt"
	"os"
	"os/signal"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt)
	fmt.Println("listening on 127.0.0.1:4321")
	<-stop
	fmt.Println("stopped")
}
