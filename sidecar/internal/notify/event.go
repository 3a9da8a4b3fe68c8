package notify

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/filesync/filesync/sidecar/internal/gcsstore"
)

// GCS notification event types (attribute eventType).
const (
	Finalize       = "OBJECT_FINALIZE"
	Delete         = "OBJECT_DELETE"
	Archive        = "OBJECT_ARCHIVE"
	MetadataUpdate = "OBJECT_METADATA_UPDATE"
)

// Event is one GCS bucket notification, from its attributes.
type Event struct {
	Type       string
	Bucket     string
	Object     string // the full object name
	Generation int64
	// OverwrittenBy is set on the DELETE or ARCHIVE of a generation that an upload replaced.
	OverwrittenBy int64
}

// errMalformed marks notifications that lack what an event needs.
var errMalformed = errors.New("malformed notification")

// ParseEvent reads a notification's attributes: they name the object and its generation (the payload,
// which may describe the object, is read by withPayload).
func ParseEvent(attrs map[string]string) (Event, error) {
	e := Event{Type: attrs["eventType"], Bucket: attrs["bucketId"], Object: attrs["objectId"]}
	if e.Type == "" || e.Bucket == "" || e.Object == "" {
		return Event{}, fmt.Errorf("%w: eventType, bucketId and objectId are required (got %q, %q, %q)",
			errMalformed, e.Type, e.Bucket, e.Object)
	}
	var err error
	if e.Generation, err = strconv.ParseInt(attrs["objectGeneration"], 10, 64); err != nil || e.Generation <= 0 {
		return Event{}, fmt.Errorf("%w: objectGeneration %q", errMalformed, attrs["objectGeneration"])
	}
	if v, ok := attrs["overwrittenByGeneration"]; ok {
		if e.OverwrittenBy, err = strconv.ParseInt(v, 10, 64); err != nil || e.OverwrittenBy <= 0 {
			return Event{}, fmt.Errorf("%w: overwrittenByGeneration %q", errMalformed, v)
		}
	}
	return e, nil
}

// Change is what the sync loop is asked to apply (syncer.RemoteChange). Path is relative to the prefix.
type Change struct {
	Path          string
	Generation    int64
	Deleted       bool
	OverwrittenBy int64
	// Metadata: only the generation's metadata changed (METADATA_UPDATE); its mtime may be new, so the
	// loop reads the object's attributes again.
	Metadata bool
	// Object is the object a FINALIZE's payload describes (withPayload): the loop takes it instead of
	// looking the object up. Nil: look it up.
	Object *gcsstore.Object
}

// withPayload gives a FINALIZE change the object its notification's payload describes (payloadFormat
// JSON_API_V1: the objects resource at that generation, as GCS and fake-gcs-server send it), when the
// payload names the event's own bucket, object and generation and holds what the sync needs (size,
// CRC32C, mtime). Any other change, and a payload that is absent (NONE), unreadable or names another
// object, leave the change as it is: the loop looks the object up (one get). The payload is no more and
// no less trusted than the attributes: both come from the bucket's notification topic.
func withPayload(c Change, e Event, attrs map[string]string, data []byte) (Change, error) {
	if e.Type != Finalize || attrs["payloadFormat"] != "JSON_API_V1" {
		return c, nil
	}
	r, err := gcsstore.ParseResource(c.Path, data)
	switch {
	case err != nil:
		return c, err
	case r.Bucket != e.Bucket || r.Name != e.Object || r.Object.Generation != e.Generation:
		return c, fmt.Errorf("the payload names gs://%s/%s#%d, the attributes gs://%s/%s#%d",
			r.Bucket, r.Name, r.Object.Generation, e.Bucket, e.Object, e.Generation)
	}
	c.Object = &r.Object
	return c, nil
}

// Scope is the part of the bucket this sidecar syncs.
type Scope struct {
	Bucket string
	Prefix string // without slashes at either end; "" for the whole bucket
}

// Path returns the object's path relative to the prefix, and whether the object lies under it.
func (s Scope) Path(object string) (string, bool) {
	if s.Prefix == "" {
		return object, object != ""
	}
	rel, ok := strings.CutPrefix(object, s.Prefix+"/")
	return rel, ok && rel != ""
}

// known is what the notifications applied so far say of one path: the newest generation, and whether it
// was deleted.
type known struct {
	gen     int64
	deleted bool
}

// decide turns an event into the change to apply, or into the reason it needs none (a value of
// metrics.NotifyIgnoreReasons). k is what earlier applied events said of the path (has: any). The rules,
// because notifications arrive out of order and more than once:
//   - a FINALIZE older than the known generation is stale, one of the known live generation a duplicate;
//   - a DELETE or ARCHIVE that carries overwrittenByGeneration never deletes anything (the new generation
//     has its own FINALIZE);
//   - a DELETE (or ARCHIVE: the live version became noncurrent) applies only to the generation it names:
//     older than the known generation it is stale, a second one a duplicate;
//   - METADATA_UPDATE changes no content but may change the mtime (rclone touch): it is applied (the
//     loop reads the object's attributes again) unless it names a generation older than the known one,
//     or one known deleted (stale).
func decide(scope Scope, k known, has bool, e Event) (Change, string) {
	if e.Bucket != scope.Bucket {
		return Change{}, "other_bucket"
	}
	path, ok := scope.Path(e.Object)
	if !ok {
		return Change{}, "outside_prefix"
	}
	switch e.Type {
	case Finalize:
		switch {
		case has && k.gen > e.Generation:
			return Change{}, "stale"
		case has && k.gen == e.Generation && !k.deleted:
			return Change{}, "duplicate"
		}
		return Change{Path: path, Generation: e.Generation}, ""
	case Delete, Archive:
		switch {
		case e.OverwrittenBy != 0:
			return Change{}, "overwritten"
		case has && k.gen > e.Generation:
			return Change{}, "stale"
		case has && k.gen == e.Generation && k.deleted:
			return Change{}, "duplicate"
		}
		return Change{Path: path, Generation: e.Generation, Deleted: true}, ""
	case MetadataUpdate:
		// No metageneration among the attributes: every update is news (one get), unless the generation
		// it names is no longer the live one.
		if has && (k.gen > e.Generation || (k.gen == e.Generation && k.deleted)) {
			return Change{}, "stale"
		}
		return Change{Path: path, Generation: e.Generation, Metadata: true}, ""
	default:
		return Change{}, "unknown_type"
	}
}

// tracker remembers, per path, what the applied events said (the newest generation, deleted or not).
// Events are handled concurrently: an event is decided against what was known when it arrived and
// recorded only once it was applied, so a failed apply leaves nothing behind and its redelivery is not
// taken for a duplicate. The sync loop checks every change against the bucket, so two events of one path
// applied at once are harmless.
type tracker struct {
	mu    sync.Mutex
	paths map[string]known
}

func newTracker() *tracker { return &tracker{paths: map[string]known{}} }

func (t *tracker) get(path string) (known, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k, ok := t.paths[path]
	return k, ok
}

// record notes an applied change, keeping the newest generation (a delete of generation g wins over a
// finalize of g: the object is gone).
func (t *tracker) record(c Change) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k, ok := t.paths[c.Path]
	if ok && (k.gen > c.Generation || (k.gen == c.Generation && k.deleted && !c.Deleted)) {
		return
	}
	t.paths[c.Path] = known{gen: c.Generation, deleted: c.Deleted}
}
