package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/filesync/filesync/e2e/internal/harness"
)

// fakeGCS is one fake-gcs-server process (plain HTTP) and the kit's JSON API client for
// it, used to seed, inspect and empty buckets outside the tools being measured.
type fakeGCS struct {
	*harness.GCS
	cmd     *exec.Cmd
	port    int
	args    []string
	done    chan struct{} // closed when the process has exited; waitErr then holds its exit status
	waitErr error
}

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

// gcsOptions selects how a fake-gcs-server is started.
type gcsOptions struct {
	// fsRoot selects the filesystem backend rooted there (default: the memory backend).
	fsRoot string
	// data preloads the directory's buckets (-data: one subdirectory per bucket) when the server starts:
	// much faster than uploading through the API into the memory backend, which scans the whole bucket on
	// every insert (twice, formatting strings).
	data string
	// front is the address clients reach the server through (a latency proxy): -external-url and
	// -public-host name it, so the absolute URLs the server hands out (resumable upload sessions) go
	// through it as well. Empty: the server's own address.
	front string
	// ready is how long to wait for the server to answer (default 30s; a -data preload takes longer).
	ready time.Duration
}

// startFakeGCS starts fake-gcs-server (plain HTTP on 127.0.0.1) with the memory backend, or the
// filesystem backend when o.fsRoot is set (the memory backend scans a bucket's objects linearly on every
// write and read, which makes a 100,000-object bucket quadratic to fill and to download from).
func startFakeGCS(ctx context.Context, bin, logPath string, o gcsOptions) (*fakeGCS, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("creating the fake-gcs-server log: %w", err)
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	external := base
	if o.front != "" {
		external = "http://" + o.front
	}
	args := []string{"-scheme", "http", "-backend", "memory", "-host", "127.0.0.1",
		"-port", strconv.Itoa(port), "-external-url", external, "-log-level", "warn"}
	if o.front != "" {
		args = append(args, "-public-host", o.front)
	}
	if o.fsRoot != "" {
		args[3] = "filesystem"
		args = append(args, "-filesystem-root", o.fsRoot)
	}
	if o.data != "" {
		args = append(args, "-data", o.data)
	}
	if o.ready <= 0 {
		o.ready = 30 * time.Second
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting fake-gcs-server: %w", err)
	}
	g := &fakeGCS{cmd: cmd, port: port, args: args, done: make(chan struct{}), GCS: &harness.GCS{
		BaseURL: base,
		HTTP:    &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Minute},
		// fake-gcs-server builds the whole listing for every page, so ask for it in one page.
		PageSize: 1000000,
	}}
	go func() { g.waitErr = cmd.Wait(); logf.Close(); close(g.done) }()
	deadline := time.Now().Add(o.ready)
	for {
		// Each attempt is short and follows ctx: during a -data preload the port accepts connections but
		// answers only once the load is done.
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		req, err := http.NewRequestWithContext(actx, http.MethodGet, base+"/storage/v1/b", nil)
		if err == nil {
			var resp *http.Response
			if resp, err = g.HTTP.Do(req); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					cancel()
					return g, nil
				}
			}
		}
		cancel()
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
			return nil, fmt.Errorf("fake-gcs-server did not answer on %s within %s; see %s", base, o.ready, logPath)
		}
	}
}

func (g *fakeGCS) host() string { return "127.0.0.1:" + strconv.Itoa(g.port) }

// commandLine is how the server was started, for the report.
func (g *fakeGCS) commandLine() string { return "fake-gcs-server " + strings.Join(g.args, " ") }

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
