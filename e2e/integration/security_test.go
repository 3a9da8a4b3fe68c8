//go:build integration

package integration

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// TestRunsAsNonRootReadOnly: the image runs as 65532:65532 by default, has no shell, and works with a
// read-only root filesystem and no capabilities: the files it writes (downloads, state) belong to 65532.
func TestRunsAsNonRootReadOnly(t *testing.T) {
	s := newStack(t)
	ctx := t.Context()

	img, err := s.docker.ImageInspect(ctx, s.cfg.filesyncImage)
	if err != nil {
		t.Fatal(err)
	}
	cfg := img.Config
	if cfg == nil {
		t.Fatalf("image %s has no config", s.cfg.filesyncImage)
	}
	if cfg.User != "65532:65532" {
		t.Errorf("image USER = %q, want 65532:65532", cfg.User)
	}
	if !slices.Equal(cfg.Entrypoint, []string{"/filesync"}) {
		t.Errorf("image ENTRYPOINT = %q, want [/filesync]", cfg.Entrypoint)
	}
	if _, ok := cfg.ExposedPorts["8090/tcp"]; !ok {
		t.Errorf("image exposes %v, want 8090/tcp", cfg.ExposedPorts)
	}
	if v := cfg.Labels["org.opencontainers.image.version"]; v == "" {
		t.Errorf("image has no org.opencontainers.image.version label (labels: %v)", cfg.Labels)
	}

	a := s.startReplica(t, "writer", replicaOptions{})
	b := s.startReplica(t, "reader", replicaOptions{})

	ins, err := s.docker.ContainerInspect(ctx, b.c.GetContainerID(), client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !ins.Container.HostConfig.ReadonlyRootfs {
		t.Fatal("the container's root filesystem is not read-only; the test would prove nothing")
	}
	if ins.Container.Config.User != "" && ins.Container.Config.User != "65532:65532" {
		t.Fatalf("container user overridden to %q", ins.Container.Config.User)
	}

	// No shell in the image.
	for _, sh := range []string{"/bin/sh", "/bin/bash", "/bin/busybox"} {
		if _, err := s.docker.CopyFromContainer(ctx, b.c.GetContainerID(), client.CopyFromContainerOptions{SourcePath: sh}); err == nil {
			t.Errorf("the image contains %s", sh)
		}
	}

	// A file filesync itself created (a download) belongs to the image's user.
	data := []byte("owned by whoever runs filesync\n")
	a.writeFile(t, "uploads/owner.txt", data)
	eventually(t, 60*time.Second, "owner.txt downloaded by the reader", func(ctx context.Context) error {
		got, err := b.readFile(ctx, "uploads/owner.txt")
		if err != nil {
			return err
		}
		if !bytes.Equal(got.data, data) {
			return fmt.Errorf("content %q, want %q", got.data, data)
		}
		if got.hdr.Uid != imageUID || got.hdr.Gid != imageUID {
			return fmt.Errorf("downloaded file owned by %d:%d, want %d:%d", got.hdr.Uid, got.hdr.Gid, imageUID, imageUID)
		}
		return nil
	})

	// The state it keeps across restarts went to --state-dir, written by the same user.
	eventually(t, 30*time.Second, "state written to --state-dir", func(ctx context.Context) error {
		tree, err := b.readTree(ctx, stateDir)
		if err != nil {
			return err
		}
		if len(tree) == 0 {
			return fmt.Errorf("%s is empty", stateDir)
		}
		for name, e := range tree {
			if e.hdr.Uid != imageUID {
				return fmt.Errorf("%s/%s owned by uid %s, want %d", stateDir, name, strconv.Itoa(e.hdr.Uid), imageUID)
			}
		}
		return nil
	})

	// Still running: nothing it needed was on the read-only root filesystem.
	st, err := b.c.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Running {
		t.Fatalf("reader stopped: %+v", st)
	}
}
