package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/filesync/filesync/e2e/internal/harness"
)

// fakeGCS is one fake-gcs-server process (memory backend, plain HTTP) and the kit's JSON API client for
// it, used to seed, inspect and empty buckets outside the tools being measured.
type fakeGCS struct {
	*harness.GCS
	cmd     *exec.Cmd
	port    int
	done    chan struct{} // closed when the process has exited; waitErr then holds its exit status
	waitErr error
}

func freePort() (int, error) { return benchPorts.get() }

// startFakeGCS starts fake-gcs-server with the memory backend, or, when fsRoot is set, the filesystem
// backend rooted there (the memory backend scans a bucket's objects linearly on every write and read,
// which makes a 100,000-object bucket quadratic to fill and to download from).
func startFakeGCS(ctx context.Context, bin, logPath, fsRoot string) (*fakeGCS, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("creating the fake-gcs-server log: %w", err)
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	args := []string{"-scheme", "http", "-backend", "memory", "-host", "127.0.0.1",
		"-port", strconv.Itoa(port), "-external-url", base, "-log-level", "warn"}
	if fsRoot != "" {
		args[3] = "filesystem"
		args = append(args, "-filesystem-root", fsRoot)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting fake-gcs-server: %w", err)
	}
	g := &fakeGCS{cmd: cmd, port: port, done: make(chan struct{}), GCS: &harness.GCS{
		BaseURL: base,
		HTTP:    &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}, Timeout: 10 * time.Minute},
		// fake-gcs-server builds the whole listing for every page, so ask for it in one page.
		PageSize: 1000000,
	}}
	go func() { g.waitErr = cmd.Wait(); logf.Close(); close(g.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := g.HTTP.Get(base + "/storage/v1/b")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return g, nil
			}
		}
		select {
		case <-g.done:
			return nil, fmt.Errorf("fake-gcs-server exited early (%w); see %s", g.waitErr, logPath)
		case <-ctx.Done():
			g.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			g.stop()
			return nil, fmt.Errorf("fake-gcs-server did not answer on %s within 30s; see %s", base, logPath)
		}
	}
}

func (g *fakeGCS) host() string { return "127.0.0.1:" + strconv.Itoa(g.port) }

func (g *fakeGCS) stop() {
	_ = g.cmd.Process.Kill()
	<-g.done
}

// pid is the server's process id, for reading its CPU time.
func (g *fakeGCS) pid() int { return g.cmd.Process.Pid }

// list returns every object under prefix/ (all of the bucket when prefix is empty).
func (g *fakeGCS) list(ctx context.Context, bucket, prefix string) ([]harness.Object, error) {
	if prefix != "" {
		prefix += "/"
	}
	return g.List(ctx, bucket, prefix)
}

// parallel runs fn for 0..n-1 on workers goroutines and returns the first error.
func parallel(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first == nil && ctx.Err() != nil && !errors.Is(ctx.Err(), context.Canceled) {
		return ctx.Err()
	}
	return first
}

// seed uploads the dataset files from dir to bucket/prefix.
func (g *fakeGCS) seed(ctx context.Context, bucket, prefix, dir string, files []file) error {
	return parallel(ctx, len(files), 16, func(ctx context.Context, i int) error {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(files[i].Rel)))
		if err != nil {
			return fmt.Errorf("seeding: %w", err)
		}
		return g.Upload(ctx, bucket, prefix+"/"+files[i].Rel, data)
	})
}

// deleteBucket deletes every object of the bucket, then the bucket, so the memory backend frees it.
func (g *fakeGCS) deleteBucket(ctx context.Context, bucket string) error {
	objs, err := g.list(ctx, bucket, "")
	if err != nil {
		return err
	}
	err = parallel(ctx, len(objs), 16, func(ctx context.Context, i int) error {
		if err := g.Delete(ctx, bucket, objs[i].Name); err != nil && !harness.IsNotFound(err) {
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return g.DeleteBucket(ctx, bucket)
}
