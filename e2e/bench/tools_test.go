package main

import (
	"context"
	"slices"
	"testing"

	"github.com/filesync/filesync/e2e/internal/tools"
)

func TestRcloneGetsNoRcloneVariables(t *testing.T) {
	t.Setenv("RCLONE_VERSION", "v9.9.9") // `make bench` exports the pin of hack/versions.env
	ts := &toolSet{bin: "/bin", host: "127.0.0.1:46000", Clients: &tools.Clients{Rclone: "/bin/rclone", RcloneConfig: "/dev/null"}}
	for _, tool := range []string{"rclone", rcloneDefaults, rcloneT8C16} {
		cmd, err := ts.command(context.Background(), tool, "restore", "b", "data", "/tmp/x")
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range cmd.Env {
			if len(kv) >= 7 && kv[:7] == "RCLONE_" {
				t.Errorf("%s gets %s", tool, kv)
			}
		}
		if cmd.Env == nil {
			t.Errorf("%s: nil Env inherits the environment", tool)
		}
		want := rcloneFlags[tool]
		if got := cmd.Args[len(cmd.Args)-len(want):]; !slices.Equal(got, want) {
			t.Errorf("%s: args %v do not end with %v", tool, cmd.Args, want)
		}
	}
}
