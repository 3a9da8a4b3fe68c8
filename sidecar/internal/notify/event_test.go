package notify

import (
	"errors"
	"strings"
	"testing"
)

func TestParseEvent(t *testing.T) {
	for _, tc := range []struct {
		name  string
		attrs map[string]string
		want  Event
		err   bool
	}{
		{"finalize", map[string]string{"eventType": Finalize, "bucketId": "b", "objectId": "p/x.jpg", "objectGeneration": "17",
			"payloadFormat": "JSON_API_V1", "eventTime": "2026-12-01T00:00:00Z", "overwroteGeneration": "16"},
			Event{Type: Finalize, Bucket: "b", Object: "p/x.jpg", Generation: 17}, false},
		{"overwritten delete", map[string]string{"eventType": Delete, "bucketId": "b", "objectId": "p/x.jpg", "objectGeneration": "16",
			"overwrittenByGeneration": "17"},
			Event{Type: Delete, Bucket: "b", Object: "p/x.jpg", Generation: 16, OverwrittenBy: 17}, false},
		{"no generation", map[string]string{"eventType": Finalize, "bucketId": "b", "objectId": "x"}, Event{}, true},
		{"bad generation", map[string]string{"eventType": Finalize, "bucketId": "b", "objectId": "x", "objectGeneration": "x"}, Event{}, true},
		{"zero generation", map[string]string{"eventType": Finalize, "bucketId": "b", "objectId": "x", "objectGeneration": "0"}, Event{}, true},
		{"bad overwritten", map[string]string{"eventType": Delete, "bucketId": "b", "objectId": "x", "objectGeneration": "1",
			"overwrittenByGeneration": ""}, Event{}, true},
		{"no object", map[string]string{"eventType": Finalize, "bucketId": "b", "objectGeneration": "1"}, Event{}, true},
		{"not a GCS event", map[string]string{"hello": "world"}, Event{}, true},
	} {
		got, err := ParseEvent(tc.attrs)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("%s: ParseEvent = %+v, %v; want %+v (error %v)", tc.name, got, err, tc.want, tc.err)
		}
		if err != nil && !errors.Is(err, errMalformed) {
			t.Errorf("%s: %v is not errMalformed", tc.name, err)
		}
	}
}

func TestDecide(t *testing.T) {
	scope := Scope{Bucket: "b", Prefix: "wp"}
	fin := func(obj string, gen int64) Event {
		return Event{Type: Finalize, Bucket: "b", Object: obj, Generation: gen}
	}
	del := func(obj string, gen, by int64) Event {
		return Event{Type: Delete, Bucket: "b", Object: obj, Generation: gen, OverwrittenBy: by}
	}
	for _, tc := range []struct {
		name   string
		k      *known // nil: nothing known of the path
		e      Event
		want   Change
		reason string
	}{
		{"new object", nil, fin("wp/a.jpg", 5), Change{Path: "a.jpg", Generation: 5}, ""},
		{"newer generation", &known{gen: 5}, fin("wp/a.jpg", 6), Change{Path: "a.jpg", Generation: 6}, ""},
		{"older finalize", &known{gen: 6}, fin("wp/a.jpg", 5), Change{}, "stale"},
		{"duplicate finalize", &known{gen: 6}, fin("wp/a.jpg", 6), Change{}, "duplicate"},
		{"finalize of a deleted generation (an ACL change on fake-gcs-server)", &known{gen: 6, deleted: true},
			fin("wp/a.jpg", 6), Change{Path: "a.jpg", Generation: 6}, ""},
		{"finalize after an older delete", &known{gen: 5, deleted: true}, fin("wp/a.jpg", 6), Change{Path: "a.jpg", Generation: 6}, ""},
		{"delete", &known{gen: 6}, del("wp/a.jpg", 6, 0), Change{Path: "a.jpg", Generation: 6, Deleted: true}, ""},
		{"delete of an unknown path", nil, del("wp/a.jpg", 6, 0), Change{Path: "a.jpg", Generation: 6, Deleted: true}, ""},
		{"delete of an overwritten generation, before its finalize", nil, del("wp/a.jpg", 5, 6), Change{}, "overwritten"},
		{"delete of an overwritten generation, after its finalize", &known{gen: 6}, del("wp/a.jpg", 5, 6), Change{}, "overwritten"},
		{"delete older than the known generation", &known{gen: 7}, del("wp/a.jpg", 6, 0), Change{}, "stale"},
		{"duplicate delete", &known{gen: 6, deleted: true}, del("wp/a.jpg", 6, 0), Change{}, "duplicate"},
		{"delete of a newer generation than known", &known{gen: 5}, del("wp/a.jpg", 6, 0),
			Change{Path: "a.jpg", Generation: 6, Deleted: true}, ""},
		{"archive is a delete of the live version", &known{gen: 6},
			Event{Type: Archive, Bucket: "b", Object: "wp/a.jpg", Generation: 6}, Change{Path: "a.jpg", Generation: 6, Deleted: true}, ""},
		{"archive of an overwritten generation", nil,
			Event{Type: Archive, Bucket: "b", Object: "wp/a.jpg", Generation: 6, OverwrittenBy: 7}, Change{}, "overwritten"},
		// A metadata update may bring a new mtime (rclone touch): the loop reads the object again.
		{"metadata update", &known{gen: 6}, Event{Type: MetadataUpdate, Bucket: "b", Object: "wp/a.jpg", Generation: 6},
			Change{Path: "a.jpg", Generation: 6, Metadata: true}, ""},
		{"metadata update of an unknown path", nil, Event{Type: MetadataUpdate, Bucket: "b", Object: "wp/a.jpg", Generation: 6},
			Change{Path: "a.jpg", Generation: 6, Metadata: true}, ""},
		{"metadata update of an older generation", &known{gen: 7}, Event{Type: MetadataUpdate, Bucket: "b", Object: "wp/a.jpg", Generation: 6},
			Change{}, "stale"},
		{"metadata update of a deleted generation", &known{gen: 6, deleted: true},
			Event{Type: MetadataUpdate, Bucket: "b", Object: "wp/a.jpg", Generation: 6}, Change{}, "stale"},
		{"other bucket", nil, Event{Type: Finalize, Bucket: "c", Object: "wp/a.jpg", Generation: 1}, Change{}, "other_bucket"},
		{"outside the prefix", nil, fin("wpx/a.jpg", 1), Change{}, "outside_prefix"},
		{"the prefix itself", nil, fin("wp", 1), Change{}, "outside_prefix"},
		{"the prefix folder", nil, fin("wp/", 1), Change{}, "outside_prefix"},
		{"unknown type", nil, Event{Type: "OBJECT_SHRUNK", Bucket: "b", Object: "wp/a.jpg", Generation: 1}, Change{}, "unknown_type"},
		{"nested path", nil, fin("wp/uploads/2026/12/a.jpg", 3), Change{Path: "uploads/2026/12/a.jpg", Generation: 3}, ""},
	} {
		var k known
		if tc.k != nil {
			k = *tc.k
		}
		got, reason := decide(scope, k, tc.k != nil, tc.e)
		if got != tc.want || reason != tc.reason {
			t.Errorf("%s: Decide = %+v %q; want %+v %q", tc.name, got, reason, tc.want, tc.reason)
		}
	}
	if got, reason := decide(Scope{Bucket: "b"}, known{}, false, fin("top.txt", 1)); reason != "" || got.Path != "top.txt" {
		t.Errorf("no prefix: %+v %q", got, reason)
	}
}

// TestTrackerKeepsTheNewest: whatever order applied changes are recorded in, the tracker ends with the
// newest generation, and a delete of generation g wins over a finalize of g.
func TestTrackerKeepsTheNewest(t *testing.T) {
	changes := []Change{{Path: "a", Generation: 5}, {Path: "a", Generation: 7}, {Path: "a", Generation: 6, Deleted: true},
		{Path: "a", Generation: 7, Deleted: true}}
	perms := [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}, {1, 3, 0, 2}, {2, 0, 3, 1}}
	for _, p := range perms {
		tr := newTracker()
		for _, i := range p {
			tr.record(changes[i])
		}
		if k, _ := tr.get("a"); k != (known{gen: 7, deleted: true}) {
			t.Errorf("order %v: %+v, want generation 7 deleted", p, k)
		}
	}
}

func TestFilter(t *testing.T) {
	if got := Filter(Scope{Bucket: "media"}); got != `attributes.bucketId = "media"` {
		t.Errorf("no prefix: %s", got)
	}
	want := `attributes.bucketId = "media" AND hasPrefix(attributes.objectId, "wp-content/")`
	if got := Filter(Scope{Bucket: "media", Prefix: "wp-content"}); got != want {
		t.Errorf("prefix: %s, want %s", got, want)
	}
	if got := Filter(Scope{Bucket: "media", Prefix: `a"b\c`}); !strings.Contains(got, `"a\"b\\c/"`) {
		t.Errorf("quoting: %s", got)
	}
}

func TestSubscriptionID(t *testing.T) {
	a, b := SubscriptionID("wordpress-7d9f8-xk2p"), SubscriptionID("wordpress-7d9f8-xk2p")
	if a == b || !strings.HasPrefix(a, "filesync-wordpress-7d9f8-xk2p-") || len(a) != len("filesync-wordpress-7d9f8-xk2p-")+8 {
		t.Errorf("ids %q, %q: want filesync-POD-<8 hex>, different each time", a, b)
	}
	for _, pod := range []string{"", "weird/name with spaces", strings.Repeat("x", 300), "---"} {
		id := SubscriptionID(pod)
		if len(id) > 255 || strings.ContainsAny(id, "/ ") || !strings.HasPrefix(id, "filesync-") {
			t.Errorf("pod %q: id %q", pod, id)
		}
	}
}

// TestWithPayload: a FINALIZE's JSON_API_V1 payload gives the change its object only when it names the
// event's own bucket, object and generation; any other event, format or payload leaves the lookup to the
// loop.
func TestWithPayload(t *testing.T) {
	const payload = `{"bucket":"b","name":"wp/a.jpg","generation":"7","size":"5","crc32c":"mnG7TA==",` +
		`"metadata":{"goog-reserved-file-mtime":"1600000000"}}`
	fin := Event{Type: Finalize, Bucket: "b", Object: "wp/a.jpg", Generation: 7}
	json := map[string]string{"payloadFormat": "JSON_API_V1"}
	c := Change{Path: "a.jpg", Generation: 7}
	got, err := withPayload(c, fin, json, []byte(payload))
	if err != nil || got.Object == nil || got.Object.Name != "a.jpg" || got.Object.Generation != 7 || got.Object.Size != 5 ||
		got.Object.CRC32C != 0x9a71bb4c || got.Object.ModTime.Unix() != 1600000000 {
		t.Fatalf("withPayload = %+v, %v", got.Object, err)
	}
	for _, tc := range []struct {
		name    string
		e       Event
		attrs   map[string]string
		payload string
		err     bool
	}{
		{"another generation", fin, json, strings.Replace(payload, `"7"`, `"8"`, 1), true},
		{"another object", fin, json, strings.Replace(payload, "wp/a.jpg", "wp/b.jpg", 1), true},
		{"another bucket", fin, json, strings.Replace(payload, `"b"`, `"c"`, 1), true},
		{"unreadable", fin, json, `{"bucket":"b"`, true},
		{"no payload", fin, map[string]string{"payloadFormat": "NONE"}, "", false},
		{"no format", fin, map[string]string{}, payload, false},
		{"a delete", Event{Type: Delete, Bucket: "b", Object: "wp/a.jpg", Generation: 7}, json, payload, false},
		{"a metadata update", Event{Type: MetadataUpdate, Bucket: "b", Object: "wp/a.jpg", Generation: 7}, json, payload, false},
	} {
		got, err := withPayload(c, tc.e, tc.attrs, []byte(tc.payload))
		if got != c || (err != nil) != tc.err {
			t.Errorf("%s: withPayload = %+v, %v; want the change unchanged (error %v)", tc.name, got, err, tc.err)
		}
	}
}
