// Command ipcNamespaceTest stands in for the ECS suite's amazon-ecs-ipc-namespace-test
// image (misc/namespace-tests in aws/amazon-ecs-agent): it creates the System V
// semaphore set with key 5 in its IPC namespace, holds it until SIGTERM or SIGINT,
// then removes it. Built static by the conformance suite (testdata is not part of
// the module's packages).
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const (
	key       = 5
	ipcCreat  = 0o1000
	ipcRMID   = 0
	semPerms  = 0o644
	semNumber = 1
)

func main() {
	id, _, errno := syscall.Syscall(syscall.SYS_SEMGET, key, semNumber, ipcCreat|semPerms)
	if errno != 0 {
		fmt.Fprintf(os.Stderr, "semget: %v\n", errno)
		os.Exit(1)
	}
	fmt.Printf("semaphore set %d with key %d\n", id, key)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	if _, _, errno := syscall.Syscall(syscall.SYS_SEMCTL, id, 0, ipcRMID); errno != 0 {
		fmt.Fprintf(os.Stderr, "semctl IPC_RMID: %v\n", errno)
		os.Exit(1)
	}
}
