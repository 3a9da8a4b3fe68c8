package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// fakeGCS is one fake-gcs-server process (memory backend, plain HTTP) and a minimal JSON API client
// for it, used to seed, inspect and empty buckets outside the tools being measured.
type fakeGCS struct {
	cmd     *exec.Cmd
	port    int
	base    string
	http    *http.Client
	done    chan struct{} // closed when the process has exited; waitErr then holds its exit status
	waitErr error
}

// object is one entry of a bucket listing.
type object struct {
	Name string
	Size int64
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

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
	g := &fakeGCS{cmd: cmd, port: port, base: base, done: make(chan struct{}),
		http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}, Timeout: 10 * time.Minute}}
	go func() { g.waitErr = cmd.Wait(); logf.Close(); close(g.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := g.http.Get(base + "/storage/v1/b")
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

func (g *fakeGCS) do(ctx context.Context, method, u string, body io.Reader, out any, okCodes ...int) error {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("building %s %s: %w", method, u, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := g.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	ok := len(okCodes) == 0 && resp.StatusCode/100 == 2
	for _, c := range okCodes {
		ok = ok || resp.StatusCode == c
	}
	if !ok {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s: %s: %s", method, u, resp.Status, bytes.TrimSpace(msg))
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return fmt.Errorf("decoding %s %s: %w", method, u, err)
		}
	} else {
		_, _ = io.Copy(io.Discard, resp.Body)
	}
	return nil
}

func (g *fakeGCS) createBucket(ctx context.Context, name string) error {
	body, _ := json.Marshal(map[string]string{"name": name})
	return g.do(ctx, http.MethodPost, g.base+"/storage/v1/b?project=test-project", bytes.NewReader(body), nil)
}

func (g *fakeGCS) upload(ctx context.Context, bucket, name string, data []byte) error {
	u := g.base + "/upload/storage/v1/b/" + url.PathEscape(bucket) + "/o?uploadType=media&name=" + url.QueryEscape(name)
	return g.do(ctx, http.MethodPost, u, bytes.NewReader(data), nil)
}

// exists reports whether the object is in the bucket.
func (g *fakeGCS) exists(ctx context.Context, bucket, name string) (bool, error) {
	u := g.base + "/storage/v1/b/" + url.PathEscape(bucket) + "/o/" + url.PathEscape(name) + "?fields=name"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, fmt.Errorf("building GET %s: %w", u, err)
	}
	resp, err := g.http.Do(req)
	if err != nil {
		return false, fmt.Errorf("GET %s: %w", u, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, fmt.Errorf("GET %s: %s", u, resp.Status)
}

// list returns every object under prefix (all of the bucket when prefix is empty).
func (g *fakeGCS) list(ctx context.Context, bucket, prefix string) ([]object, error) {
	var objs []object
	token := ""
	for {
		// fake-gcs-server builds the whole listing for every page, so ask for it in one page.
		q := url.Values{"maxResults": {"1000000"}, "fields": {"items(name,size),nextPageToken"}}
		if prefix != "" {
			q.Set("prefix", prefix+"/")
		}
		if token != "" {
			q.Set("pageToken", token)
		}
		var page struct {
			Items []struct {
				Name string `json:"name"`
				Size string `json:"size"`
			} `json:"items"`
			NextPageToken string `json:"nextPageToken"`
		}
		if err := g.do(ctx, http.MethodGet, g.base+"/storage/v1/b/"+url.PathEscape(bucket)+"/o?"+q.Encode(), nil, &page); err != nil {
			return nil, err
		}
		for _, it := range page.Items {
			size, err := strconv.ParseInt(it.Size, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("object %s: size %q: %w", it.Name, it.Size, err)
			}
			objs = append(objs, object{Name: it.Name, Size: size})
		}
		if page.NextPageToken == "" {
			return objs, nil
		}
		token = page.NextPageToken
	}
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
		return g.upload(ctx, bucket, prefix+"/"+files[i].Rel, data)
	})
}

// deleteBucket deletes every object of the bucket, then the bucket, so the memory backend frees it.
func (g *fakeGCS) deleteBucket(ctx context.Context, bucket string) error {
	objs, err := g.list(ctx, bucket, "")
	if err != nil {
		return err
	}
	err = parallel(ctx, len(objs), 16, func(ctx context.Context, i int) error {
		u := g.base + "/storage/v1/b/" + url.PathEscape(bucket) + "/o/" + url.PathEscape(objs[i].Name)
		return g.do(ctx, http.MethodDelete, u, nil, nil, http.StatusNoContent, http.StatusOK, http.StatusNotFound)
	})
	if err != nil {
		return err
	}
	return g.do(ctx, http.MethodDelete, g.base+"/storage/v1/b/"+url.PathEscape(bucket), nil, nil)
}
