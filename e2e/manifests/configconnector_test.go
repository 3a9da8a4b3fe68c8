package manifests_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/filesync/filesync/e2e/manifests"
)

// The event types filesync needs from a bucket: writes, deletes, deletes on a versioned bucket, metadata.
var gcsEventTypes = []string{"OBJECT_FINALIZE", "OBJECT_DELETE", "OBJECT_ARCHIVE", "OBJECT_METADATA_UPDATE"}

// In the gke overlay Config Connector declares the topic the sidecars subscribe to, the bucket's
// notification to it, and least-privilege IAM for both ends.
func TestGKEOverlayNotifications(t *testing.T) {
	t.Parallel()
	m := render(t, gkeOverlay)
	wp := deployment(t, m, "wordpress")
	se := mustEnv(t, m, findContainer(&wp.Spec.Template.Spec, sidecarName))
	if se["PUBSUB_EMULATOR_HOST"] != "" {
		t.Errorf("PUBSUB_EMULATOR_HOST=%q in the gke overlay", se["PUBSUB_EMULATOR_HOST"])
	}
	topics := manifests.All[manifests.PubSubTopic](m)
	if len(topics) != 1 {
		t.Fatalf("%d PubSubTopics, want 1", len(topics))
	}
	topic := topics[0]
	project := topic.Annotations["cnrm.cloud.google.com/project-id"]
	topicID := topic.Name
	if topic.Spec.ResourceID != nil {
		topicID = *topic.Spec.ResourceID
	}
	if want := "projects/" + project + "/topics/" + topicID; se["FILESYNC_NOTIFICATIONS"] != want {
		t.Errorf("FILESYNC_NOTIFICATIONS = %q, the PubSubTopic is %s", se["FILESYNC_NOTIFICATIONS"], want)
	}

	bucket, prefix, _ := strings.Cut(strings.TrimPrefix(se["FILESYNC_REMOTE"], "gs://"), "/")
	notes := manifests.All[manifests.StorageNotification](m)
	if len(notes) != 1 {
		t.Fatalf("%d StorageNotifications, want 1", len(notes))
	}
	n := notes[0].Spec
	if n.BucketRef.External != bucket || n.BucketRef.Name != "" {
		t.Errorf("the notification is on bucket %+v, filesync syncs %s", n.BucketRef, bucket)
	}
	if n.TopicRef.Name != topic.Name {
		t.Errorf("the notification publishes to %+v, not the PubSubTopic %s", n.TopicRef, topic.Name)
	}
	if n.ObjectNamePrefix == nil || *n.ObjectNamePrefix != prefix+"/" {
		t.Errorf("objectNamePrefix %v, want %q (the sidecars' prefix)", n.ObjectNamePrefix, prefix+"/")
	}
	for _, e := range gcsEventTypes {
		if len(n.EventTypes) > 0 && !slices.Contains(n.EventTypes, e) {
			t.Errorf("eventTypes %v lacks %s", n.EventTypes, e)
		}
	}
	if n.PayloadFormat != "JSON_API_V1" && n.PayloadFormat != "NONE" {
		t.Errorf("payloadFormat %q", n.PayloadFormat)
	}

	// IAM: who may do what, on which resource.
	var gsa string
	for _, sa := range manifests.All[corev1.ServiceAccount](m) {
		if g := sa.Annotations["iam.gke.io/gcp-service-account"]; g != "" {
			gsa = "serviceAccount:" + g
		}
	}
	roles := map[string][]string{}
	for _, r := range manifests.All[manifests.IAMCustomRole](m) {
		id := r.Name
		if r.Spec.ResourceID != nil {
			id = *r.Spec.ResourceID
		}
		if r.Annotations["cnrm.cloud.google.com/project-id"] != project {
			t.Errorf("IAMCustomRole %s is not in project %s", r.Name, project)
		}
		roles["projects/"+project+"/roles/"+id] = r.Spec.Permissions
	}
	granted := map[string][]string{} // permission -> the kinds of resource it is granted on
	publisher := false
	for _, b := range manifests.All[manifests.IAMPolicyMember](m) {
		member := ""
		if b.Spec.Member != nil {
			member = *b.Spec.Member
		}
		ref := b.Spec.ResourceRef
		switch {
		case strings.HasSuffix(member, "@gs-project-accounts.iam.gserviceaccount.com"):
			publisher = b.Spec.Role == "roles/pubsub.publisher" && ref.Kind == "PubSubTopic" && ref.Name == topic.Name
			if !publisher {
				t.Errorf("the Cloud Storage service agent gets %s on %+v; want roles/pubsub.publisher on the topic", b.Spec.Role, ref)
			}
		case member == gsa:
			perms, custom := roles[b.Spec.Role]
			if !custom {
				t.Errorf("the pods' service account gets %s: want only the custom roles declared here", b.Spec.Role)
			}
			for _, p := range perms {
				granted[p] = append(granted[p], ref.Kind)
			}
			if ref.Kind == "PubSubTopic" && ref.Name != topic.Name {
				t.Errorf("a grant on another topic: %+v", ref)
			}
			if ref.Kind == "Project" && ref.External != "projects/"+project {
				t.Errorf("a grant on another project: %+v", ref)
			}
		default:
			t.Errorf("IAMPolicyMember %s grants %s to %q, neither the pods' service account (%s) nor the Cloud Storage service agent",
				b.Name, b.Spec.Role, member, gsa)
		}
	}
	if !publisher {
		t.Error("nothing lets the Cloud Storage service agent publish to the topic")
	}
	want := map[string][]string{
		"pubsub.subscriptions.create":      {"Project"},
		"pubsub.subscriptions.consume":     {"Project"},
		"pubsub.subscriptions.delete":      {"Project"},
		"pubsub.topics.attachSubscription": {"PubSubTopic"},
	}
	if fmt.Sprint(granted) != fmt.Sprint(want) {
		t.Errorf("the pods' service account may %v\nwant exactly %v", granted, want)
	}
}
