package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/filesync/filesync/e2e/internal/harness"
	"github.com/filesync/filesync/e2e/internal/tools"
)

// portRange is where the bench's listeners live (fake-gcs-server, the latency proxy, the replicas'
// /metrics): a range of its own, so a bench running beside other work on the machine does not take a
// port that someone else's process is about to bind. Set by -ports (BENCH_PORTS).
var portRange = [2]int{46000, 46999}

var (
	portsMu sync.Mutex
	handed  = map[int]bool{} // ports given out in this run: a listener may not be bound yet
)

// freePort returns a port of portRange that is free now and not yet given out in this run.
func freePort() (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	n := portRange[1] - portRange[0] + 1
	start := rand.IntN(n)
	for i := range n {
		p := portRange[0] + (start+i)%n
		if handed[p] {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		l.Close()
		handed[p] = true
		return p, nil
	}
	return 0, fmt.Errorf("no free port in %d-%d", portRange[0], portRange[1])
}

// parsePortRange parses "LOW-HIGH".
func parsePortRange(s string) ([2]int, error) {
	lo, hi, ok := strings.Cut(s, "-")
	a, err1 := strconv.Atoi(strings.TrimSpace(lo))
	b, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if !ok || err1 != nil || err2 != nil || a < 1 || b > 65535 || a > b {
		return [2]int{}, fmt.Errorf("%q: want LOW-HIGH, like 46000-46999", s)
	}
	return [2]int{a, b}, nil
}

// gcsOptions selects how a fake-gcs-server is started (tools.FakeGCSOptions).
type gcsOptions = tools.FakeGCSOptions

// fakeGCS is one fake-gcs-server process and the kit's JSON API client for it, on a port of portRange.
type fakeGCS struct{ *tools.FakeGCS }

// startFakeGCS starts fake-gcs-server on a free port of portRange (tools.StartFakeGCS).
func startFakeGCS(ctx context.Context, bin, logPath string, o gcsOptions) (*fakeGCS, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	g, err := tools.StartFakeGCS(ctx, bin, logPath, port, o)
	if err != nil {
		return nil, err
	}
	return &fakeGCS{g}, nil
}

// startFSGCS starts a fake-gcs-server with the filesystem backend over a folder of its own, work/gcs-NAME
// (its log fake-gcs-server-NAME.log), for a case that writes its objects straight into the backend's
// layout (writeFSBackendObjects). stop stops it and removes the folder.
func (b *bench) startFSGCS(ctx context.Context, name string) (gcs *fakeGCS, root string, stop func(), err error) {
	root = filepath.Join(b.opt.work, "gcs-"+name)
	gcs, err = startFakeGCS(ctx, filepath.Join(b.bin, "fake-gcs-server"), filepath.Join(b.logDir, "fake-gcs-server-"+name+".log"), gcsOptions{FSRoot: root})
	if err != nil {
		os.RemoveAll(root)
		return nil, "", nil, err
	}
	return gcs, root, func() { gcs.stop(); os.RemoveAll(root) }, nil
}

func (g *fakeGCS) host() string        { return g.Host() }
func (g *fakeGCS) commandLine() string { return g.CommandLine() }
func (g *fakeGCS) stop()               { g.Stop() }
func (g *fakeGCS) pid() int            { return g.Pid() }

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
