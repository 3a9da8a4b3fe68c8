// Command filesync keeps a directory in two-way sync with a Google Cloud Storage location, safely for N
// replicas. See docs/design.md in the kit for the contract and `filesync --help` for the flags.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/filesync/filesync/sidecar/internal/app"
)

// version is stamped by the build (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := app.Run(ctx, app.Env{
		Args: os.Args[1:], Getenv: os.Getenv, Environ: os.Environ, Stdout: os.Stdout, Stderr: os.Stderr, Version: version,
	})
	stop()
	os.Exit(app.ExitCode(err, os.Stderr))
}
