package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// The ready case (issue 23): how long a fresh pod takes to be ready, how much it holds on disk then and
// its peak RSS, for a site of readyCode code files and 0, 20,000 or 100,000 media objects, with and
// without --lazy uploads/ (eager: everything is downloaded before ready; lazy: the media is recorded
// remote-only and filled in behind); and, with --lazy, what the first read of a media file that is not
// local yet costs through the read-through against one that is.

const readyCode = 2000

// readyRow is one configuration's measurements.
type readyRow struct {
	Media int
	Lazy  bool
	// MemLimit is the GOMEMLIMIT the replica ran with ("": none, the Go default).
	MemLimit string
	Ready    time.Duration // the replica's start to /readyz 200
	Disk     int64         // bytes of the regular files in the directory at ready
	Files    int           // regular files in the directory at ready
	HWM      int64         // VmHWM at ready, KiB
	// With --lazy: the read-through's answer for a media file already local, and for one not local yet
	// (fetched from the bucket), medians over readyReads files each.
	LocalRead, RemoteRead time.Duration
	// With --lazy: once the replica knows every path (filesync_known_files: the media listed after ready
	// and recorded remote-only), how long after ready, and its peak and current RSS then, KiB.
	KnownAfter         time.Duration
	KnownHWM, KnownRSS int64
	KnownCPU           time.Duration // CPU time (user and system) from the start until then
	// SettledHWM is the peak RSS readySettle after that, KiB: the polls (whole listings) and the fill
	// that go on once every path is known have had their turn.
	SettledHWM int64
	// With --lazy: the listing the restore waits on (the top level, then every folder but uploads/ whole:
	// the requests a lazy restore makes), timed apart against the same emulator once the replica has
	// stopped, median of readyListRuns: what of Ready is the emulator's listing.
	ListWait time.Duration
}

const readyListRuns = 3

// readySettle is how long the lazy replica runs on once it knows every path before its peak RSS is read
// again: several polls of the whole bucket (each a listing of every object) on this emulator.
const readySettle = 30 * time.Second

// readyMemLimit is the soft memory limit of the lazy replica's second run at 100,000 media objects: what a
// sidecar container limited to 64 MiB would set (the Go runtime's own memory, not the binary's pages,
// which are some 19 MiB of its RSS, 27 before the build left gRPC's DirectPath out; kept at 36 MiB so the
// runs compare).
const readyMemLimit = "36MiB"

// readyCache is the lazy replica's --cache-size: a few media files' worth, so that what it holds once it
// knows the whole site is the base and the index, not the media (issue 23, point 5).
const readyCache = "4MB"

const readyReads = 15

// readySite is the site: code under plugins/ (3-20 KB, like PHP sources) and media under uploads/YYYY/MM/
// (1-4 KB each: what is measured is the per-object cost, not bandwidth).
func readySite(media int) []file {
	return lazySite(readyCode, 40, media, func(i int) int64 { return int64(1000 + i*13%3000) })
}

// lazySite is a site as a lazy replica sees it: code files under plugins/ (3-20 KB, like PHP sources, in
// plugins folders) and media objects under uploads/YYYY/MM/, media file i of mediaSize(i) bytes.
func lazySite(code, plugins, media int, mediaSize func(i int) int64) []file {
	files := make([]file, 0, code+media)
	for i := range code {
		files = append(files, file{Rel: fmt.Sprintf("plugins/plugin-%02d/src/f%04d.php", i%plugins, i), Size: int64(3000 + i*7%17000)})
	}
	for i := range media {
		files = append(files, file{Rel: fmt.Sprintf("uploads/%d/%02d/m%06d.jpg", 2020+i%6, i%12+1, i), Size: mediaSize(i)})
	}
	return files
}

func (b *bench) ready(ctx context.Context) error {
	gcs, fsRoot, stopGCS, err := b.startFSGCS(ctx, "ready")
	if err != nil {
		return err
	}
	defer stopGCS()
	for _, media := range []int{0, 20000, 100000} {
		bucket := "ready" + strconv.Itoa(media)
		if err := gcs.CreateBucket(ctx, bucket); err != nil {
			return err
		}
		files := readySite(media)
		content := func(i int) []byte {
			data := make([]byte, files[i].Size)
			for k := range data {
				data[k] = byte(i + k)
			}
			return data
		}
		if err := writeFSBackendObjects(fsRoot, bucket, prefix, files, content); err != nil {
			return err
		}
		type mode struct {
			lazy     bool
			memLimit string
		}
		modes := []mode{{false, ""}, {true, ""}}
		if media == 100000 {
			modes = append(modes, mode{true, readyMemLimit})
		}
		for _, m := range modes {
			lazy := m.lazy
			row, err := b.readyOnce(ctx, gcs, bucket, media, lazy, m.memLimit, files)
			if err != nil {
				return fmt.Errorf("ready, %d media objects, lazy %v: %w", media, lazy, err)
			}
			b.rep.Ready = append(b.rep.Ready, row)
			tool := "filesync"
			if lazy {
				tool = "filesync-lazy"
			}
			if m.memLimit != "" {
				tool += "-gomemlimit"
			}
			fmt.Fprintln(b.raw, benchLine(fmt.Sprintf("Ready/tool=%s/media=%d", tool, media), row.Ready,
				metric{float64(row.Disk), "disk-B"}, metric{float64(row.HWM), "peak-RSS-KiB"}))
			b.log.Info("ready", "media", media, "lazy", lazy, "ready", row.Ready.Round(time.Millisecond), "disk", row.Disk,
				"files", row.Files, "hwm_kib", row.HWM, "local_read", row.LocalRead, "remote_read", row.RemoteRead,
				"known_after", row.KnownAfter.Round(time.Millisecond), "known_hwm_kib", row.KnownHWM, "known_rss_kib", row.KnownRSS,
				"known_cpu", row.KnownCPU, "settled_hwm_kib", row.SettledHWM, "gomemlimit", m.memLimit)
		}
		if err := os.RemoveAll(filepath.Join(fsRoot, bucket)); err != nil {
			return err
		}
	}
	return nil
}

// readyOnce starts a replica on an empty directory (with GOMEMLIMIT=memLimit, unless "") and measures it
// at ready.
func (b *bench) readyOnce(ctx context.Context, gcs *fakeGCS, bucket string, media int, lazy bool, memLimit string, files []file) (row readyRow, err error) {
	row = readyRow{Media: media, Lazy: lazy, MemLimit: memLimit}
	var env []string
	if memLimit != "" {
		env = []string{"GOMEMLIMIT=" + memLimit}
	}
	dir := filepath.Join(b.opt.work, "ready-replica")
	defer os.RemoveAll(dir)
	var extra []string
	rtAddr := ""
	if lazy {
		port, err := freePort()
		if err != nil {
			return row, err
		}
		rtAddr = "127.0.0.1:" + strconv.Itoa(port)
		extra = []string{"--lazy", "uploads/", "--cache-size", readyCache, "--read-through", rtAddr, "--read-through-include", "uploads/**"}
	}
	name := fmt.Sprintf("ready-%d-lazy-%v", media, lazy)
	if memLimit != "" {
		name += "-gomemlimit"
	}
	r, err := startReplica(name, dir, "gs://"+bucket+"/"+prefix, gcs.host(), filepath.Join(b.logDir, name+".log"), env, extra...)
	if err != nil {
		return row, err
	}
	defer r.stop()
	start := time.Now()
	if row.Ready, err = r.waitReady(ctx, 30*time.Minute); err != nil {
		return row, err
	}
	row.HWM, _ = procStatus(r.pid(), "VmHWM")
	if row.Disk, row.Files, err = diskUse(dir); err != nil {
		return row, err
	}
	if lazy {
		defer func() {
			if err == nil {
				r.stop()
				row.ListWait, err = eagerListing(ctx, gcs, bucket)
			}
		}()
	}
	if !lazy || media == 0 {
		return row, nil
	}
	// The objects carry one time, so the fill takes them by path: the last paths are filled last. Read
	// readyReads of them that are not local yet through the read-through, then the same files again,
	// local now.
	var picked []string
	for i := len(files) - 1; i >= readyCode && len(picked) < readyReads; i-- {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(files[i].Rel))); err != nil {
			picked = append(picked, files[i].Rel)
		}
	}
	var remote, local []time.Duration
	for _, round := range []*[]time.Duration{&remote, &local} {
		for _, rel := range picked {
			d, err := timedGet(r.http, "http://"+rtAddr+"/"+rel)
			if err != nil {
				return row, err
			}
			*round = append(*round, d)
		}
	}
	row.RemoteRead, row.LocalRead = median(remote), median(local)
	for {
		known, err := r.metric("filesync_known_files")
		if err != nil {
			return row, err
		}
		if int(known) >= len(files) {
			break
		}
		if time.Since(start) > 30*time.Minute {
			return row, fmt.Errorf("%s knows %d of %d paths 30 minutes after its start", name, int(known), len(files))
		}
		time.Sleep(500 * time.Millisecond)
	}
	row.KnownAfter = time.Since(start) - row.Ready
	row.KnownHWM, _ = procStatus(r.pid(), "VmHWM")
	row.KnownRSS, _ = procStatus(r.pid(), "VmRSS")
	row.KnownCPU, _ = procCPU(r.pid())
	select {
	case <-time.After(readySettle):
	case <-ctx.Done():
		return row, ctx.Err()
	}
	row.SettledHWM, _ = procStatus(r.pid(), "VmHWM")
	return row, nil
}

// eagerListing times, readyListRuns times, the listing a lazy restore makes of the bucket under prefix/
// (gcsstore.Store.ListSkipping with uploads/ left out): the top level with a delimiter, then each folder
// but uploads/ whole, a page of 1,000 at a time, and returns the median.
func eagerListing(ctx context.Context, gcs *fakeGCS, bucket string) (time.Duration, error) {
	pages := func(q url.Values) url.Values { // the restore's page size and projection
		q.Set("maxResults", "1000")
		q.Set("projection", "noAcl")
		return q
	}
	var runs []time.Duration
	for range readyListRuns {
		start := time.Now()
		_, folders, err := gcs.ListQuery(ctx, bucket, pages(url.Values{"prefix": {prefix + "/"}, "delimiter": {"/"}}))
		if err != nil {
			return 0, err
		}
		for _, f := range slices.Compact(slices.Sorted(slices.Values(folders))) {
			if f == prefix+"/uploads/" {
				continue
			}
			if _, _, err := gcs.ListQuery(ctx, bucket, pages(url.Values{"prefix": {f}})); err != nil {
				return 0, err
			}
		}
		runs = append(runs, time.Since(start))
	}
	return median(runs), nil
}

// timedGet GETs url, reads the body and returns how long that took; anything but 200 is an error.
func timedGet(c *http.Client, url string) (time.Duration, error) {
	start := time.Now()
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	return time.Since(start), nil
}

// diskUse sums the sizes of the regular files under dir (filesync's own folder included) and counts them.
// The directory may change meanwhile: what is gone when it is looked at (renamed, evicted) does not
// count, and a missing dir holds nothing.
func diskUse(dir string) (int64, int, error) {
	var total int64
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		total += info.Size()
		n++
		return nil
	})
	return total, n, err
}
