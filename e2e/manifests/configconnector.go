package manifests

// Config Connector resources the gke overlay declares (examples/wordpress/components/notifications).
// github.com/GoogleCloudPlatform/k8s-config-connector, which publishes their Go types, is refused by the
// module proxy this kit builds with, so these are the fields the kit uses, with the JSON names and shapes of
// those types (pkg/clients/generated/apis/{pubsub,storage,iam}/v1beta1 and k8s/v1alpha1, read at
// k8s-config-connector commits 1b3835c9 (PubSubTopic), 477307fa (StorageNotification), 13d73dd5
// (IAMPolicyMember) and 1f11547a (IAMCustomRole)). Decoding is strict, so a misspelt or misplaced field
// fails; a field the kit starts using must be added here from those types first.

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// KCCResourceRef is Config Connector's reference to another resource: by name (managed in the cluster)
// or by external ID.
type KCCResourceRef struct {
	External  string `json:"external,omitempty"`
	Kind      string `json:"kind,omitempty"`
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace,omitempty"`
}

// KCCIAMResourceRef is the resource an IAM policy member is set on (kind required).
type KCCIAMResourceRef struct {
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name,omitempty"`
	APIVersion string `json:"apiVersion,omitempty"`
	External   string `json:"external,omitempty"`
}

// PubSubTopic is pubsub.cnrm.cloud.google.com/v1beta1 PubSubTopic.
type PubSubTopic struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              struct {
		KmsKeyRef                *KCCResourceRef `json:"kmsKeyRef,omitempty"`
		MessageRetentionDuration *string         `json:"messageRetentionDuration,omitempty"`
		ResourceID               *string         `json:"resourceID,omitempty"`
	} `json:"spec,omitempty"`
}

// StorageNotification is storage.cnrm.cloud.google.com/v1beta1 StorageNotification.
type StorageNotification struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              struct {
		BucketRef        KCCResourceRef    `json:"bucketRef"`
		CustomAttributes map[string]string `json:"customAttributes,omitempty"`
		EventTypes       []string          `json:"eventTypes,omitempty"`
		ObjectNamePrefix *string           `json:"objectNamePrefix,omitempty"`
		PayloadFormat    string            `json:"payloadFormat"`
		ResourceID       *string           `json:"resourceID,omitempty"`
		TopicRef         KCCResourceRef    `json:"topicRef"`
	} `json:"spec,omitempty"`
}

// IAMPolicyMember is iam.cnrm.cloud.google.com/v1beta1 IAMPolicyMember (member given directly; the kit
// uses no memberFrom or condition).
type IAMPolicyMember struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              struct {
		Member      *string           `json:"member,omitempty"`
		ResourceRef KCCIAMResourceRef `json:"resourceRef"`
		Role        string            `json:"role"`
	} `json:"spec,omitempty"`
}

// IAMCustomRole is iam.cnrm.cloud.google.com/v1beta1 IAMCustomRole.
type IAMCustomRole struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              struct {
		Description *string  `json:"description,omitempty"`
		Permissions []string `json:"permissions"`
		ResourceID  *string  `json:"resourceID,omitempty"`
		Stage       *string  `json:"stage,omitempty"`
		Title       string   `json:"title"`
	} `json:"spec,omitempty"`
}
