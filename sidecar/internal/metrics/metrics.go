// Package metrics defines filesync's Prometheus metrics on a registry of its own (no global registry).
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds every filesync_ metric.
type Metrics struct {
	Registry *prometheus.Registry

	Uploads   prometheus.Counter
	Downloads prometheus.Counter
	Deletes   *prometheus.CounterVec // side=local|remote
	Bytes     *prometheus.CounterVec // direction=upload|download
	Errors    *prometheus.CounterVec // op=list|stat|scan|upload|download|delete_remote|delete_local|conflict|state|fill
	Conflicts prometheus.Counter
	// ConflictsDropped counts conflict copies deleted because their path had more than --max-conflicts.
	ConflictsDropped prometheus.Counter
	SkippedUnsafe    prometheus.Counter
	Preconditions    prometheus.Counter
	DeleteGuard      prometheus.Counter
	DeleteBlocked    prometheus.Gauge
	PendingUploads   prometheus.Gauge
	KnownFiles       prometheus.Gauge
	LastSuccess      prometheus.Gauge
	Ready            prometheus.Gauge
	PassDuration     prometheus.Histogram
	WatchOverflows   prometheus.Counter
	WatchUnwatched   prometheus.Gauge
	GCSRequests      *prometheus.CounterVec // op=list|get|read|insert|delete (gcsstore.Op*)
	Wipes            *prometheus.CounterVec // side=local|remote
	Passes           *prometheus.CounterVec // kind=full|targeted
	SkippedPaths     *prometheus.CounterVec // reason=unreadable|clash|symlink|corrupt|content_encoding|exec (--no-exec)
	ReadThrough      *prometheus.CounterVec // result=local|bucket|peer|miss|refused|error (readthrough.Result*)
	PeerRequests     *prometheus.CounterVec // result=served|miss|writing|refused|unauthorized (readthrough.Peer*)
	// PermanentFailures counts writes the bucket refused for good: reason=retention (a retention policy or an
	// object hold), once per path and version.
	PermanentFailures *prometheus.CounterVec
	// The restore (the passes before ready): what it has to download and how far it is.
	RestoreFiles, RestoreFilesDone, RestoreBytes, RestoreBytesDone prometheus.Gauge
	// Lazy paths (--lazy): the remote-only ones, not local yet (the background fill's work left).
	LazyFiles, LazyBytes prometheus.Gauge
	// LazyCacheBytes is the bytes of the local files at lazy paths (what --cache-size bounds);
	// LazyEvictions counts the lazy files evicted to stay within it.
	LazyCacheBytes prometheus.Gauge
	LazyEvictions  prometheus.Counter

	// Bucket notifications (--notifications, internal/notify).
	NotifyReceived    prometheus.Counter
	NotifyApplied     prometheus.Counter
	NotifyIgnored     *prometheus.CounterVec // reason=stale|duplicate|overwritten|other_bucket|outside_prefix|malformed|unknown_type
	NotifyRecreations prometheus.Counter
	NotifyReconciles  prometheus.Counter
	NotifySubscribed  prometheus.Gauge

	// Change hooks (--on-change, internal/hooks).
	HookRequests  *prometheus.CounterVec // result=ok|error|rejected (hooks.Result*)
	HookPending   prometheus.Gauge
	HookDropped   *prometheus.CounterVec // reason=overflow|rejected|shutdown (hooks.Drop*)
	HookDelivered prometheus.Counter
}

// NotifyIgnoreReasons are the values of filesync_notify_events_ignored_total's reason label.
var NotifyIgnoreReasons = []string{"stale", "duplicate", "overwritten", "other_bucket", "outside_prefix",
	"malformed", "unknown_type"}

// New registers the metrics (and the Go/process collectors) on a new registry.
func New() *Metrics {
	r := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { r.MustRegister(c) }
	m := &Metrics{
		Registry: r,
		Uploads:  prometheus.NewCounter(prometheus.CounterOpts{Name: "filesync_uploads_total", Help: "Files uploaded to the bucket."}),
		Downloads: prometheus.NewCounter(prometheus.CounterOpts{Name: "filesync_downloads_total",
			Help: "Files downloaded from the bucket."}),
		Deletes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "filesync_deletes_total",
			Help: "Deletions propagated, by the side where the file was deleted."}, []string{"side"}),
		Bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "filesync_bytes_total",
			Help: "Bytes transferred, by direction."}, []string{"direction"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "filesync_errors_total",
			Help: "Failed operations, by operation."}, []string{"op"}),
		Conflicts: prometheus.NewCounter(prometheus.CounterOpts{Name: "filesync_conflicts_total",
			Help: "Conflicts resolved by keeping the remote version and preserving the local one under .filesync/conflicts/."}),
		ConflictsDropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "filesync_conflicts_dropped_total",
			Help: "Conflict copies deleted, oldest first, because their path had more than --max-conflicts."}),
		SkippedUnsafe: prometheus.NewCounter(prometheus.CounterOpts{Name: "filesync_skipped_unsafe_total",
			Help: "Object or file names skipped because they could land outside the directory."}),
		Preconditions: prometheus.NewCounter(prometheus.CounterOpts{Name: "filesync_precondition_failures_total",
			Help: "Writes or deletes refused because another replica changed the object first (re-planned)."}),
		DeleteGuard: prometheus.NewCounter(prometheus.CounterOpts{Name: "filesync_delete_guard_trips_total",
			Help: "Passes whose deletes were withheld by --max-delete."}),
		DeleteBlocked: prometheus.NewGauge(prometheus.GaugeOpts{Name: "filesync_delete_blocked",
			Help: "1 while the last pass withheld deletes because of --max-delete."}),
		PendingUploads: prometheus.NewGauge(prometheus.GaugeOpts{Name: "filesync_pending_uploads",
			Help: "Local changes not yet uploaded."}),
		KnownFiles: prometheus.NewGauge(prometheus.GaugeOpts{Name: "filesync_known_files",
			Help: "Paths known to be in sync (the base)."}),
		LastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "filesync_last_success_timestamp_seconds",
			Help: "Unix time of the last pass that completed without errors, or of the last poll that found nothing new while nothing was failing."}),
		Ready: prometheus.NewGauge(prometheus.GaugeOpts{Name: "filesync_ready",
			Help: "1 once the first full pass (the restore) has completed."}),
		PassDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "filesync_pass_duration_seconds",
			Help: "Duration of sync passes.", Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12)}),
		WatchOverflows: prometheus.NewCounter(prometheus.CounterOpts{Name: "filesync_watch_overflows_total",
			Help: "fsnotify event overflows (each triggers a full rescan)."}),
		WatchUnwatched: prometheus.NewGauge(prometheus.GaugeOpts{Name: "filesync_watch_unwatched_directories",
			Help: "Directories the watcher cannot watch now (unreadable by the sidecar's user, or the inotify watch limit reached): tried again until they are; the periodic rescan covers them meanwhile."}),
		GCSRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "filesync_gcs_requests_total",
			Help: "Requests this sidecar made to GCS, by kind: list (one per page of 1,000 objects), get (metadata), read (downloads), insert (uploads), delete."},
			[]string{"op"}),
		PermanentFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "filesync_permanent_failures_total",
			Help: "Uploads and remote deletes the bucket refused for good, by reason: retention (a retention policy or an object hold; HTTP 403). Each is counted and logged once per path and version, and not retried until the file or the object changes."},
			[]string{"reason"}),
		Wipes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "filesync_wipes_total",
			Help: "Times a side was found to have lost more than --max-delete of the known files at once (wiped): it was restored from the other side and nothing was deleted."},
			[]string{"side"}),
		Passes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "filesync_passes_total",
			Help: "Sync passes, by kind: full (walked the whole directory: at start, after lost events, every --rescan-interval, before deleting remotely) or targeted (looked only at what changed)."},
			[]string{"kind"}),
		SkippedPaths: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "filesync_skipped_paths_total",
			Help: "Paths left alone until they change, by reason: unreadable locally, a file/directory clash, under a symlink, an object whose bytes never match its checksum, a gzip-encoded object, or an executable name under --no-exec (exec)."},
			[]string{"reason"}),
		ReadThrough: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "filesync_read_through_requests_total",
			Help: "Requests the read-through answered, by where from: local (the directory), bucket (downloaded first), peer (streamed from another replica), miss (404), refused (a path it does not serve), error (the bucket failed)."},
			[]string{"result"}),
		PeerRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "filesync_peer_requests_total",
			Help: "Requests the peer listener (--peer-listen) answered other replicas, by result: served (the local file), miss (not here: 404), writing (open for writing: 404), refused (a path it does not serve), unauthorized (without the shared secret: 401)."},
			[]string{"result"}),
		RestoreFiles: prometheus.NewGauge(prometheus.GaugeOpts{Name: "filesync_restore_files",
			Help: "Files the restore (the first pass, before ready) has to download."}),
		RestoreFilesDone: prometheus.NewGauge(prometheus.GaugeOpts{Name: "filesync_restore_files_done",
			Help: "Files the restore has downloaded so far."}),
		RestoreBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "filesync_restore_bytes",
			Help: "Bytes the restore has to download."}),
		RestoreBytesDone: prometheus.NewGauge(prometheus.GaugeOpts{Name: "filesync_restore_bytes_done",
			Help: "Bytes the restore has downloaded so far."}),
		LazyFiles: prometheus.NewGauge(prometheus.GaugeOpts{Name: "filesync_lazy_files_remote_only",
			Help: "Lazy files (--lazy) known in the bucket and not local yet: what the background fill has left to download."}),
		LazyBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "filesync_lazy_bytes_remote_only",
			Help: "Bytes of the lazy files (--lazy) not local yet."}),
		LazyCacheBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "filesync_lazy_cache_bytes",
			Help: "Bytes of the local files at lazy paths (--lazy): what --cache-size bounds."}),
		LazyEvictions: prometheus.NewCounter(prometheus.CounterOpts{Name: "filesync_lazy_evictions_total",
			Help: "Lazy files evicted (made remote-only again) to keep the lazy files within --cache-size."}),
		NotifyReceived: prometheus.NewCounter(prometheus.CounterOpts{Name: "filesync_notify_events_received_total",
			Help: "Bucket notifications received from this sidecar's Pub/Sub subscription."}),
		NotifyApplied: prometheus.NewCounter(prometheus.CounterOpts{Name: "filesync_notify_events_applied_total",
			Help: "Bucket notifications handed to the sync loop and acked once a pass had applied them (or found them unnecessary)."}),
		NotifyIgnored: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "filesync_notify_events_ignored_total",
			Help: "Bucket notifications acked without a pass, by reason: stale (older than the generation known), duplicate, overwritten (the delete of an overwritten generation), other_bucket, outside_prefix, malformed, unknown_type."},
			[]string{"reason"}),
		NotifyRecreations: prometheus.NewCounter(prometheus.CounterOpts{Name: "filesync_notify_subscription_recreations_total",
			Help: "Times the Pub/Sub subscription was found gone (or the stream failed) and was created again."}),
		NotifyReconciles: prometheus.NewCounter(prometheus.CounterOpts{Name: "filesync_notify_reconcile_listings_total",
			Help: "Full listings asked for because notifications may have been missed (the stream failed or the subscription was recreated); the periodic --reconcile-interval listing is the loop's poll."}),
		NotifySubscribed: prometheus.NewGauge(prometheus.GaugeOpts{Name: "filesync_notify_subscribed",
			Help: "1 while this sidecar's Pub/Sub subscription exists and is being received from."}),
		HookRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "filesync_hook_requests_total",
			Help: "POSTs to the --on-change URLs, by result: ok (2xx), error (network error, timeout, 408, 429 or 5xx: retried), rejected (3xx or another 4xx: the batch is dropped)."},
			[]string{"result"}),
		HookPending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "filesync_hook_events_pending",
			Help: "Change events waiting for or in delivery to the --on-change URLs (summed over the URLs)."}),
		HookDropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "filesync_hook_events_dropped_total",
			Help: "Change events never delivered, by reason: overflow (more paths waiting than the queue holds), rejected (the receiver refused the batch), shutdown (still waiting when the shutdown budget ran out)."},
			[]string{"reason"}),
		HookDelivered: prometheus.NewCounter(prometheus.CounterOpts{Name: "filesync_hook_events_delivered_total",
			Help: "Change events a --on-change URL took (2xx), summed over the URLs."}),
	}
	for _, c := range []prometheus.Collector{m.Uploads, m.Downloads, m.Deletes, m.Bytes, m.Errors, m.Conflicts, m.ConflictsDropped,
		m.SkippedUnsafe, m.Preconditions, m.DeleteGuard, m.DeleteBlocked, m.PendingUploads, m.KnownFiles,
		m.LastSuccess, m.Ready, m.PassDuration, m.WatchOverflows, m.WatchUnwatched, m.GCSRequests, m.Wipes, m.PermanentFailures, m.Passes, m.SkippedPaths,
		m.RestoreFiles, m.RestoreFilesDone, m.RestoreBytes, m.RestoreBytesDone, m.LazyFiles, m.LazyBytes, m.LazyCacheBytes, m.LazyEvictions, m.ReadThrough, m.PeerRequests,
		m.NotifyReceived, m.NotifyApplied, m.NotifyIgnored, m.NotifyRecreations, m.NotifyReconciles, m.NotifySubscribed,
		m.HookRequests, m.HookPending, m.HookDropped, m.HookDelivered,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
	for _, side := range []string{"local", "remote"} {
		m.Deletes.WithLabelValues(side)
	}
	for _, d := range []string{"upload", "download"} {
		m.Bytes.WithLabelValues(d)
	}
	for _, op := range []string{"list", "get", "read", "insert", "delete"} {
		m.GCSRequests.WithLabelValues(op)
	}
	for _, side := range []string{"local", "remote"} {
		m.Wipes.WithLabelValues(side)
	}
	for _, kind := range []string{"full", "targeted"} {
		m.Passes.WithLabelValues(kind)
	}
	m.PermanentFailures.WithLabelValues("retention")
	for _, r := range NotifyIgnoreReasons {
		m.NotifyIgnored.WithLabelValues(r)
	}
	for _, r := range []string{"ok", "error", "rejected"} {
		m.HookRequests.WithLabelValues(r)
	}
	for _, r := range []string{"overflow", "rejected", "shutdown"} {
		m.HookDropped.WithLabelValues(r)
	}
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}
