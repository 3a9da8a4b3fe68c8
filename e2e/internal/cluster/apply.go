//go:build e2e

package cluster

import (
	"context"
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"

	"github.com/filesync/filesync/e2e/manifests"
)

// applyKustomization server-side applies every object manifests.Build renders for dir (the very rendering
// the manifest tests check), so re-running against a kept cluster converges.
// With withoutReadThrough (the negative control of feature 09) the WordPress container does not mount the
// Apache rule that sends missing uploads to the read-through.
func applyKustomization(dir string, withoutReadThrough bool) env.Func {
	return func(ctx context.Context, c *envconf.Config) (context.Context, error) {
		rm, err := manifests.Build(dir)
		if err != nil {
			return ctx, err
		}
		cl := c.Client().Resources().GetControllerRuntimeClient()
		for _, res := range rm.Resources() {
			m, err := res.Map()
			if err != nil {
				return ctx, fmt.Errorf("%s: %w", res.CurId(), err)
			}
			if withoutReadThrough && res.GetKind() == "Deployment" && res.GetName() == WordPress {
				if err := dropMount(m, AppContainer, readThroughConf); err != nil {
					return ctx, err
				}
			}
			data, err := json.Marshal(m)
			if err != nil {
				return ctx, fmt.Errorf("%s: %w", res.CurId(), err)
			}
			u := &unstructured.Unstructured{Object: m}
			err = cl.Patch(ctx, u, client.RawPatch(types.ApplyPatchType, data), client.FieldOwner("filesync-e2e"), client.ForceOwnership)
			if err != nil {
				return ctx, fmt.Errorf("apply %s: %w", res.CurId(), err)
			}
		}
		return ctx, nil
	}
}

// readThroughConf is where the read-through Component mounts its Apache rule.
const readThroughConf = "/etc/apache2/conf-enabled/zz-filesync-read-through.conf"

// dropMount removes container's volume mount at mountPath from a Deployment's map form (as kustomize gives
// it: plain maps and slices, ints that the unstructured helpers would refuse).
func dropMount(obj map[string]any, container, mountPath string) error {
	dig := func(m map[string]any, keys ...string) map[string]any {
		for _, k := range keys {
			m, _ = m[k].(map[string]any)
		}
		return m
	}
	containers, _ := dig(obj, "spec", "template", "spec")["containers"].([]any)
	for _, c := range containers {
		cm, _ := c.(map[string]any)
		if cm["name"] != container {
			continue
		}
		mounts, _ := cm["volumeMounts"].([]any)
		for i, vm := range mounts {
			if v, _ := vm.(map[string]any); v["mountPath"] == mountPath {
				cm["volumeMounts"] = append(mounts[:i:i], mounts[i+1:]...)
				return nil
			}
		}
	}
	return fmt.Errorf("negative control: container %s mounts nothing at %s", container, mountPath)
}
