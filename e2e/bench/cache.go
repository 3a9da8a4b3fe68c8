package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The cache case (issue 23): with --cache-size cacheBudget and cacheMedia media objects of cacheObject
// bytes each under --lazy uploads/ (ten times the budget), the disk the media takes never exceeds the
// budget plus the transfers in flight, sampled every cacheSampleEvery over the background fill, a quiet
// window at the budget and a read-back of every media file through the read-through; and every file reads
// back byte-identical.

const (
	cacheMedia  = 1000
	cacheObject = 512 << 10
	cacheCode   = 20
	cacheBudget = 50 << 20
	// cacheTransfers is --transfers, the sidecar's default, written on the command line so the bound
	// follows it: the fill runs a quarter of them at a time, and the read-back adds one read-through fetch.
	cacheTransfers   = 8
	cacheSampleEvery = 100 * time.Millisecond
	// cacheIdle: the window after the fill reached the budget, nothing read: the fill has no room left, so
	// it should download nothing, and nothing should be evicted.
	cacheIdle = 10 * time.Second
	// cacheAfter: sampling goes on this long after the read-back.
	cacheAfter = 3 * time.Second
)

// The sampling phases.
const (
	phaseFill = iota
	phaseIdle
	phaseRead
	phases
)

var phaseNames = [phases]string{"fill", "at the budget, idle", "read-back"}

// cacheResult is the case's measurements.
type cacheResult struct {
	Command  string
	Media    int
	Object   int64
	Budget   int64
	InFlight int64 // cacheTransfers x Object
	Ready    time.Duration
	// The first remote-only count above 0 the metrics showed after ready, and when.
	FirstRemote   float64
	FirstRemoteAt time.Duration
	// Fill: ready to the fill reaching the budget; media files local then, and the evictions so far
	// (nothing was read: an eviction means the fill went over the budget).
	Fill          time.Duration
	FillFiles     int
	FillEvictions float64
	// Over the idle window: downloads (filesync_downloads_total) and evictions.
	IdleDownloads, IdleEvictions float64
	// Per phase: how long, the largest sample (media + temp) and the median one.
	Took    [phases]time.Duration
	Max     [phases]diskSample
	Median  [phases]int64
	MaxTemp int64 // the largest temp bytes of any sample
	Samples int
	// The read-back: files read, mismatches, failures, the first few of those, where the read-through
	// answered from (X-Filesync-Read-Through), and each read's time.
	Read                  int
	Mismatches, Failures  int
	Errors                []string
	FromLocal, FromBucket int
	ReadP50, ReadMax      time.Duration
	// After the read-back: evictions since the start, filesync_lazy_cache_bytes, media on disk.
	Evictions, FinalCache  float64
	FinalMedia, FinalFiles int64
	Total                  time.Duration
}

// maxDisk is the largest sample of any phase.
func (c *cacheResult) maxDisk() int64 {
	var m int64
	for _, s := range c.Max {
		m = max(m, s.total())
	}
	return m
}

// diskSample is one sample: bytes of the regular files under uploads/, and of filesync's temp files
// (.filesync/tmp: a download before its rename; .filesync/stage: a new folder before its rename).
type diskSample struct {
	Media, Temp int64
}

func (s diskSample) total() int64 { return s.Media + s.Temp }

// cacheSite is the site: cacheCode code files under plugins/ and cacheMedia media objects of cacheObject
// bytes under uploads/YYYY/MM/.
func cacheSite() []file {
	return lazySite(cacheCode, 4, cacheMedia, func(int) int64 { return cacheObject })
}

// cacheContent is file i's bytes: a stream seeded by i, so every file differs from every other throughout.
func cacheContent(files []file, i int) []byte {
	data := make([]byte, files[i].Size)
	r := rand.New(rand.NewPCG(uint64(i), 23))
	for k := 0; k < len(data); k += 8 {
		v := r.Uint64()
		for j := k; j < min(k+8, len(data)); j++ {
			data[j] = byte(v)
			v >>= 8
		}
	}
	return data
}

func (b *bench) cache(ctx context.Context) error {
	start := time.Now()
	gcs, fsRoot, stopGCS, err := b.startFSGCS(ctx, "cache")
	if err != nil {
		return err
	}
	defer stopGCS()
	const bucket = "cache"
	if err := gcs.CreateBucket(ctx, bucket); err != nil {
		return err
	}
	files := cacheSite()
	if err := writeFSBackendObjects(fsRoot, bucket, prefix, files, func(i int) []byte { return cacheContent(files, i) }); err != nil {
		return err
	}
	res := &cacheResult{Media: cacheMedia, Object: cacheObject, Budget: cacheBudget, InFlight: cacheTransfers * cacheObject}
	b.rep.Cache = res
	err = b.cacheRun(ctx, gcs, bucket, files, res)
	res.Total = time.Since(start)
	fmt.Fprintln(b.raw, benchLine(fmt.Sprintf("Cache/media=%d", cacheMedia), res.Total,
		metric{float64(res.Budget), "budget-B"}, metric{float64(res.maxDisk()), "max-disk-B"},
		metric{float64(res.Mismatches + res.Failures), "bad-reads"}, metric{res.Evictions, "evictions"},
		metric{res.IdleDownloads, "idle-downloads"}))
	b.log.Info("cache", "budget", res.Budget, "in_flight", res.InFlight, "max_disk", res.maxDisk(), "max_temp", res.MaxTemp,
		"samples", res.Samples, "read", res.Read, "mismatches", res.Mismatches, "failures", res.Failures,
		"evictions", res.Evictions, "idle_downloads", res.IdleDownloads, "total", res.Total.Round(time.Second))
	if err != nil {
		return err
	}
	var bad []string
	if m := res.maxDisk(); m > res.Budget+res.InFlight {
		bad = append(bad, fmt.Sprintf("disk use reached %d bytes, over the budget %d plus %d in flight", m, res.Budget, res.InFlight))
	}
	if res.FillEvictions+res.IdleEvictions > 0 {
		bad = append(bad, fmt.Sprintf("the fill went over the budget: %v evictions before anything was read, %v downloads and %v evictions in the %s at the budget",
			res.FillEvictions, res.IdleDownloads, res.IdleEvictions, cacheIdle))
	}
	if res.Read != cacheMedia || res.Mismatches+res.Failures > 0 {
		bad = append(bad, fmt.Sprintf("%d of %d media files read back identical (%d mismatches, %d failures: %s)",
			res.Read-res.Mismatches-res.Failures, cacheMedia, res.Mismatches, res.Failures, strings.Join(res.Errors, "; ")))
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	return nil
}

// cacheRun starts the replica, samples its disk over the fill, the idle window and the read-back, and
// reads every media file back through the read-through.
func (b *bench) cacheRun(ctx context.Context, gcs *fakeGCS, bucket string, files []file, res *cacheResult) error {
	dir := filepath.Join(b.opt.work, "cache-replica")
	defer os.RemoveAll(dir)
	port, err := freePort()
	if err != nil {
		return err
	}
	rtAddr := "127.0.0.1:" + strconv.Itoa(port)
	r, err := startReplica("cache", dir, "gs://"+bucket+"/"+prefix, gcs.host(), filepath.Join(b.logDir, "cache.log"), nil,
		"--lazy", "uploads/", "--cache-size", strconv.Itoa(cacheBudget>>20)+"MiB", "--transfers", strconv.Itoa(cacheTransfers),
		"--read-through", rtAddr, "--read-through-include", "uploads/**")
	if err != nil {
		return err
	}
	defer r.stop()
	res.Command = strings.Join(r.cmd.Args, " ")

	sm, err := newDiskSampler(dir, filepath.Join(b.logDir, "cache-disk.tsv"))
	if err != nil {
		return err
	}
	sctx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	done := make(chan struct{})
	go func() { sm.run(sctx); close(done) }()
	phaseStart := time.Now()
	next := func(p int) {
		res.Took[sm.setPhase(p)] = time.Since(phaseStart)
		phaseStart = time.Now()
	}
	defer func() {
		stopSampling()
		<-done
		for p := range phases {
			res.Max[p], res.Median[p] = sm.max[p], median(sm.totals[p])
		}
		res.MaxTemp, res.Samples = sm.maxTemp, sm.n
		if sm.err != nil {
			b.log.Warn("cache: sampling the disk", "err", sm.err)
		}
	}()

	if res.Ready, err = r.waitReady(ctx, 10*time.Minute); err != nil {
		return err
	}
	if err := cacheWaitFill(ctx, r, time.Now(), res); err != nil {
		return err
	}
	if _, res.FillFiles, err = diskUse(filepath.Join(dir, "uploads")); err != nil {
		return err
	}
	b.log.Info("cache: the fill reached the budget", "after_ready", res.Fill.Round(100*time.Millisecond), "media_files", res.FillFiles,
		"evictions", res.FillEvictions,
		"first_remote_only", res.FirstRemote, "first_remote_only_after", res.FirstRemoteAt.Round(100*time.Millisecond))
	next(phaseIdle)
	before, err := r.metrics()
	if err != nil {
		return err
	}
	if !sleepCtx(ctx, cacheIdle) {
		return ctx.Err()
	}
	after, err := r.metrics()
	if err != nil {
		return err
	}
	res.IdleDownloads = after.Sum("filesync_downloads_total") - before.Sum("filesync_downloads_total")
	res.IdleEvictions = after.Sum("filesync_lazy_evictions_total") - before.Sum("filesync_lazy_evictions_total")

	next(phaseRead)
	client := &http.Client{Timeout: 2 * time.Minute}
	var took []time.Duration
	for i := cacheCode; i < len(files); i++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		res.Read++
		t0 := time.Now()
		src, err := cacheReadBack(client, "http://"+rtAddr+"/"+files[i].Rel, cacheContent(files, i))
		took = append(took, time.Since(t0))
		switch {
		case errors.Is(err, errMismatch):
			res.Mismatches++
		case err != nil:
			res.Failures++
		}
		if err != nil && len(res.Errors) < 5 {
			res.Errors = append(res.Errors, fmt.Sprintf("%s: %v", files[i].Rel, err))
		}
		switch src {
		case "local":
			res.FromLocal++
		case "bucket":
			res.FromBucket++
		}
	}
	res.ReadP50, res.ReadMax = median(took), slices.Max(took)
	if !sleepCtx(ctx, cacheAfter) {
		return ctx.Err()
	}
	next(phaseRead)
	m, err := r.metrics()
	if err != nil {
		return err
	}
	res.Evictions, res.FinalCache = m.Sum("filesync_lazy_evictions_total"), m.Sum("filesync_lazy_cache_bytes")
	media, n, err := diskUse(filepath.Join(dir, "uploads"))
	res.FinalMedia, res.FinalFiles = media, int64(n)
	return err
}

// cacheWaitFill waits until the fill has reached the budget: filesync_lazy_cache_bytes leaves no room for
// one more object, or a pass evicted (the gauge then shows the bytes left after the eviction), or every
// lazy file is local (the remote-only count, once above 0, is 0 again).
func cacheWaitFill(ctx context.Context, r *replica, readyAt time.Time, res *cacheResult) error {
	deadline := readyAt.Add(15 * time.Minute)
	for {
		m, err := r.metrics()
		if err != nil {
			return err
		}
		remote, cached := m.Sum("filesync_lazy_files_remote_only"), m.Sum("filesync_lazy_cache_bytes")
		evicted := m.Sum("filesync_lazy_evictions_total")
		if res.FirstRemote == 0 && remote > 0 {
			res.FirstRemote, res.FirstRemoteAt = remote, time.Since(readyAt)
		}
		if int64(cached)+cacheObject > cacheBudget || evicted > 0 || (res.FirstRemote > 0 && remote == 0) {
			res.Fill, res.FillEvictions = time.Since(readyAt), evicted
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the fill did not reach the budget within 15m of ready (remote-only %v, cache bytes %v)", remote, cached)
		}
		if !sleepCtx(ctx, 200*time.Millisecond) {
			return ctx.Err()
		}
	}
}

var errMismatch = errors.New("content differs")

// cacheReadBack GETs url and compares the body with want; it returns where the read-through answered from.
func cacheReadBack(c *http.Client, url string, want []byte) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	src := resp.Header.Get("X-Filesync-Read-Through")
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		return src, err
	}
	if resp.StatusCode != http.StatusOK {
		return src, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if !bytes.Equal(got, want) {
		return src, fmt.Errorf("%w: %d bytes, want %d", errMismatch, len(got), len(want))
	}
	return src, nil
}

// diskSampler samples a replica's disk every cacheSampleEvery, keeps the largest sample and every total
// per phase, and writes each sample to a TSV file (milliseconds since the start, phase, media, temp).
type diskSampler struct {
	dir     string
	out     *os.File
	mu      sync.Mutex
	phase   int
	max     [phases]diskSample
	totals  [phases][]int64
	maxTemp int64
	n       int
	err     error
}

func newDiskSampler(dir, out string) (*diskSampler, error) {
	f, err := os.Create(out)
	if err != nil {
		return nil, err
	}
	return &diskSampler{dir: dir, out: f}, nil
}

// setPhase starts phase p and returns the phase it ends.
func (s *diskSampler) setPhase(p int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.phase
	s.phase = p
	return old
}

func (s *diskSampler) run(ctx context.Context) {
	defer s.out.Close()
	w := bufio.NewWriter(s.out)
	defer w.Flush()
	fmt.Fprintln(w, "ms\tphase\tmedia_bytes\ttemp_bytes")
	start := time.Now()
	t := time.NewTicker(cacheSampleEvery)
	defer t.Stop()
	for {
		d, err := sampleDisk(s.dir)
		s.mu.Lock()
		if err != nil && s.err == nil {
			s.err = err
		}
		if err == nil {
			s.n++
			s.totals[s.phase] = append(s.totals[s.phase], d.total())
			if d.total() > s.max[s.phase].total() {
				s.max[s.phase] = d
			}
			s.maxTemp = max(s.maxTemp, d.Temp)
			fmt.Fprintf(w, "%d\t%s\t%d\t%d\n", time.Since(start).Milliseconds(), phaseNames[s.phase], d.Media, d.Temp)
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sampleDisk walks the temp folders first, then uploads/: a download renamed in between counts twice,
// never not at all.
func sampleDisk(dir string) (diskSample, error) {
	var d diskSample
	for _, sub := range []string{".filesync/tmp", ".filesync/stage"} {
		n, _, err := diskUse(filepath.Join(dir, filepath.FromSlash(sub)))
		if err != nil {
			return d, err
		}
		d.Temp += n
	}
	n, _, err := diskUse(filepath.Join(dir, "uploads"))
	d.Media = n
	return d, err
}
