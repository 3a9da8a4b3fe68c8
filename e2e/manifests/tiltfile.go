package manifests

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// Tiltfile is what executing a Tiltfile asked Tilt to do, recorded by stand-ins for Tilt's builtins.
// Paths are as written (Tilt resolves them against the Tiltfile's directory).
type Tiltfile struct {
	AllowedContexts []string
	LocalResources  []LocalResource
	ImageBuilds     []ImageBuild
	Kustomizations  []string // directories given to kustomize()
	YAML            [][]byte // what k8s_yaml() was given, rendered
	Resources       []K8sResource
}

// LocalResource is a local_resource() call.
type LocalResource struct {
	Name, Cmd                          string
	Deps, Ignore, ResourceDeps, Labels []string
}

// ImageBuild is a docker_build() or custom_build() call.
type ImageBuild struct {
	Builtin                   string // docker_build or custom_build
	Ref                       string
	Context, Dockerfile       string   // docker_build
	Only                      []string // docker_build
	Command                   string   // custom_build
	Deps                      []string // custom_build
	Ignore                    []string
	LiveUpdate, HasEntrypoint bool
}

// K8sResource is a k8s_resource() call.
type K8sResource struct {
	Workload, NewName    string
	PortForwards         []PortForward
	Links                []Link
	ResourceDeps, Labels []string
}

// PortForward is a port_forward() value, or a port forward written as an int or "LOCAL:CONTAINER".
type PortForward struct {
	Local, Container int
	Name, LinkPath   string
}

// Link is a link() value or a URL string.
type Link struct{ URL, Name string }

// Kustomizer renders a kustomization directory for kustomize().
type Kustomizer func(dir string) ([]byte, error)

// ExecTiltfile runs the Tiltfile at path with go.starlark.net. Only the builtins below exist, with Tilt's
// parameter names: a call to any other builtin, or an unknown keyword argument, is an error, so the test
// notices when the Tiltfile starts using something nobody checked. kustomize() renders with render.
func ExecTiltfile(path string, render Kustomizer) (*Tiltfile, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read tiltfile: %w", err)
	}
	r := &recorder{tf: &Tiltfile{}, dir: filepath.Dir(path), render: render}
	predeclared := starlark.StringDict{}
	for name, fn := range map[string]func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error){
		"allow_k8s_contexts": r.allowK8sContexts,
		"local_resource":     r.localResource,
		"docker_build":       r.dockerBuild,
		"custom_build":       r.customBuild,
		"kustomize":          r.kustomize,
		"k8s_yaml":           r.k8sYAML,
		"k8s_resource":       r.k8sResource,
		"link":               r.link,
		"port_forward":       r.portForward,
	} {
		predeclared[name] = starlark.NewBuiltin(name, fn)
	}
	thread := &starlark.Thread{Name: "tiltfile"}
	opts := &syntax.FileOptions{Set: true, While: true, TopLevelControl: true, GlobalReassign: true, Recursion: true}
	if _, err := starlark.ExecFileOptions(opts, thread, path, src, predeclared); err != nil {
		var ee *starlark.EvalError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("exec tiltfile: %s", ee.Backtrace())
		}
		return nil, fmt.Errorf("exec tiltfile: %w", err)
	}
	return r.tf, nil
}

type recorder struct {
	tf     *Tiltfile
	dir    string
	render Kustomizer
}

func (r *recorder) allowK8sContexts(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var contexts starlark.Value
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "contexts", &contexts); err != nil {
		return nil, err
	}
	s, err := stringList(b.Name(), "contexts", contexts)
	if err != nil {
		return nil, err
	}
	r.tf.AllowedContexts = append(r.tf.AllowedContexts, s...)
	return starlark.None, nil
}

func (r *recorder) localResource(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var (
		name, cmd                          string
		deps, resourceDeps, ignore, labels starlark.Value = starlark.None, starlark.None, starlark.None, starlark.None
		unused                             [14]starlark.Value
	)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs,
		"name", &name, "cmd?", &cmd, "deps?", &deps, "trigger_mode?", &unused[0], "resource_deps?", &resourceDeps,
		"ignore?", &ignore, "auto_init?", &unused[1], "serve_cmd?", &unused[2], "cmd_bat?", &unused[3],
		"serve_cmd_bat?", &unused[4], "allow_parallel?", &unused[5], "links?", &unused[6], "tags?", &unused[7],
		"env?", &unused[8], "serve_env?", &unused[9], "readiness_probe?", &unused[10], "dir?", &unused[11],
		"serve_dir?", &unused[12], "labels?", &labels,
	); err != nil {
		return nil, err
	}
	lr := LocalResource{Name: name, Cmd: cmd}
	var err error
	if lr.Deps, err = stringList(b.Name(), "deps", deps); err != nil {
		return nil, err
	}
	if lr.ResourceDeps, err = stringList(b.Name(), "resource_deps", resourceDeps); err != nil {
		return nil, err
	}
	if lr.Ignore, err = stringList(b.Name(), "ignore", ignore); err != nil {
		return nil, err
	}
	if lr.Labels, err = stringList(b.Name(), "labels", labels); err != nil {
		return nil, err
	}
	r.tf.LocalResources = append(r.tf.LocalResources, lr)
	return starlark.None, nil
}

func (r *recorder) dockerBuild(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var (
		ref, context                   string
		dockerfile                                    = "Dockerfile"
		only, ignore                   starlark.Value = starlark.None, starlark.None
		liveUpdate, entrypoint, dfText starlark.Value
		unused                         [15]starlark.Value
	)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs,
		"ref", &ref, "context", &context, "build_args?", &unused[0], "dockerfile?", &dockerfile,
		"dockerfile_contents?", &dfText, "live_update?", &liveUpdate, "match_in_env_vars?", &unused[1],
		"ignore?", &ignore, "only?", &only, "entrypoint?", &entrypoint, "target?", &unused[2], "ssh?", &unused[3],
		"network?", &unused[4], "secret?", &unused[5], "extra_tag?", &unused[6], "container_args?", &unused[7],
		"cache_from?", &unused[8], "pull?", &unused[9], "platform?", &unused[10], "extra_hosts?", &unused[11],
	); err != nil {
		return nil, err
	}
	if dfText != nil {
		return nil, fmt.Errorf("%s: dockerfile_contents is not supported by this stand-in", b.Name())
	}
	ib := ImageBuild{Builtin: b.Name(), Ref: ref, Context: context, Dockerfile: dockerfile,
		LiveUpdate: liveUpdate != nil, HasEntrypoint: entrypoint != nil}
	var err error
	if ib.Only, err = stringList(b.Name(), "only", only); err != nil {
		return nil, err
	}
	if ib.Ignore, err = stringList(b.Name(), "ignore", ignore); err != nil {
		return nil, err
	}
	r.tf.ImageBuilds = append(r.tf.ImageBuilds, ib)
	return starlark.None, nil
}

func (r *recorder) customBuild(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var (
		ref, command           string
		deps                   starlark.Value
		ignore                 starlark.Value = starlark.None
		liveUpdate, entrypoint starlark.Value
		unused                 [13]starlark.Value
	)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs,
		"ref", &ref, "command", &command, "deps", &deps, "tag?", &unused[0], "disable_push?", &unused[1],
		"skips_local_docker?", &unused[2], "live_update?", &liveUpdate, "match_in_env_vars?", &unused[3],
		"ignore?", &ignore, "entrypoint?", &entrypoint, "command_bat_val?", &unused[4],
		"outputs_image_ref_to?", &unused[5], "container_args?", &unused[6], "command_bat?", &unused[7],
		"image_deps?", &unused[8], "env?", &unused[9], "dir?", &unused[10],
	); err != nil {
		return nil, err
	}
	ib := ImageBuild{Builtin: b.Name(), Ref: ref, Command: command, LiveUpdate: liveUpdate != nil, HasEntrypoint: entrypoint != nil}
	var err error
	if ib.Deps, err = stringList(b.Name(), "deps", deps); err != nil {
		return nil, err
	}
	if ib.Ignore, err = stringList(b.Name(), "ignore", ignore); err != nil {
		return nil, err
	}
	r.tf.ImageBuilds = append(r.tf.ImageBuilds, ib)
	return starlark.None, nil
}

// blob is what kustomize() returns and k8s_yaml() takes, as in Tilt.
type blob struct{ text string }

func (b blob) String() string        { return b.text }
func (b blob) Type() string          { return "blob" }
func (b blob) Freeze()               {}
func (b blob) Truth() starlark.Bool  { return b.text != "" }
func (b blob) Hash() (uint32, error) { return starlark.String(b.text).Hash() }

func (r *recorder) kustomize(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var (
		dir    string
		unused [2]starlark.Value
	)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "pathToDir", &dir, "kustomize_bin?", &unused[0], "flags?", &unused[1]); err != nil {
		return nil, err
	}
	y, err := r.render(filepath.Join(r.dir, dir))
	if err != nil {
		return nil, fmt.Errorf("%s(%q): %w", b.Name(), dir, err)
	}
	r.tf.Kustomizations = append(r.tf.Kustomizations, dir)
	return blob{text: string(y)}, nil
}

func (r *recorder) k8sYAML(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var y, allowDuplicates starlark.Value
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "yaml", &y, "allow_duplicates?", &allowDuplicates); err != nil {
		return nil, err
	}
	for _, v := range listOf(y) {
		switch v := v.(type) {
		case blob:
			r.tf.YAML = append(r.tf.YAML, []byte(v.text))
		case starlark.String: // a path to a YAML file
			data, err := os.ReadFile(filepath.Join(r.dir, string(v)))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", b.Name(), err)
			}
			r.tf.YAML = append(r.tf.YAML, data)
		default:
			return nil, fmt.Errorf("%s: want a blob, a path or a list of them, got %s", b.Name(), v.Type())
		}
	}
	return starlark.None, nil
}

func (r *recorder) k8sResource(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var (
		workload, newName                         string
		portForwards, resourceDeps, links, labels starlark.Value = starlark.None, starlark.None, starlark.None, starlark.None
		unused                                    [6]starlark.Value
	)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs,
		"workload?", &workload, "new_name?", &newName, "port_forwards?", &portForwards,
		"extra_pod_selectors?", &unused[0], "trigger_mode?", &unused[1], "resource_deps?", &resourceDeps,
		"objects?", &unused[2], "auto_init?", &unused[3], "pod_readiness?", &unused[4], "links?", &links,
		"labels?", &labels, "discovery_strategy?", &unused[5],
	); err != nil {
		return nil, err
	}
	res := K8sResource{Workload: workload, NewName: newName}
	var err error
	if res.ResourceDeps, err = stringList(b.Name(), "resource_deps", resourceDeps); err != nil {
		return nil, err
	}
	if res.Labels, err = stringList(b.Name(), "labels", labels); err != nil {
		return nil, err
	}
	for _, v := range listOf(portForwards) {
		pf, err := toPortForward(v)
		if err != nil {
			return nil, fmt.Errorf("%s: port_forwards: %w", b.Name(), err)
		}
		res.PortForwards = append(res.PortForwards, pf)
	}
	for _, v := range listOf(links) {
		switch v := v.(type) {
		case linkValue:
			res.Links = append(res.Links, v.Link)
		case starlark.String:
			res.Links = append(res.Links, Link{URL: string(v)})
		default:
			return nil, fmt.Errorf("%s: links: want link() or a URL, got %s", b.Name(), v.Type())
		}
	}
	r.tf.Resources = append(r.tf.Resources, res)
	return starlark.None, nil
}

type linkValue struct{ Link }

func (l linkValue) String() string        { return fmt.Sprintf("link(%q, %q)", l.URL, l.Name) }
func (l linkValue) Type() string          { return "link" }
func (l linkValue) Freeze()               {}
func (l linkValue) Truth() starlark.Bool  { return true }
func (l linkValue) Hash() (uint32, error) { return starlark.String(l.URL).Hash() }

func (r *recorder) link(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var l Link
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "url", &l.URL, "name?", &l.Name); err != nil {
		return nil, err
	}
	return linkValue{l}, nil
}

type portForwardValue struct{ PortForward }

func (p portForwardValue) String() string {
	return fmt.Sprintf("port_forward(%d, %d)", p.Local, p.Container)
}
func (p portForwardValue) Type() string          { return "port_forward" }
func (p portForwardValue) Freeze()               {}
func (p portForwardValue) Truth() starlark.Bool  { return true }
func (p portForwardValue) Hash() (uint32, error) { return starlark.MakeInt(p.Local).Hash() }

func (r *recorder) portForward(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var (
		pf        PortForward
		container starlark.Value = starlark.None
		host      starlark.Value
	)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "local_port", &pf.Local, "container_port?", &container,
		"name?", &pf.Name, "link_path?", &pf.LinkPath, "host?", &host); err != nil {
		return nil, err
	}
	pf.Container = pf.Local
	if container != starlark.None {
		if err := starlark.AsInt(container, &pf.Container); err != nil {
			return nil, fmt.Errorf("%s: container_port: %w", b.Name(), err)
		}
	}
	return portForwardValue{pf}, nil
}

// toPortForward accepts what Tilt accepts in port_forwards: port_forward(), 8080, or "8080:80".
func toPortForward(v starlark.Value) (PortForward, error) {
	switch v := v.(type) {
	case portForwardValue:
		return v.PortForward, nil
	case starlark.Int:
		var p int
		if err := starlark.AsInt(v, &p); err != nil {
			return PortForward{}, err
		}
		return PortForward{Local: p, Container: p}, nil
	case starlark.String:
		var pf PortForward
		if n, err := fmt.Sscanf(string(v), "%d:%d", &pf.Local, &pf.Container); err == nil && n == 2 {
			return pf, nil
		}
		if n, err := fmt.Sscanf(string(v), "%d", &pf.Local); err == nil && n == 1 {
			pf.Container = pf.Local
			return pf, nil
		}
		return PortForward{}, fmt.Errorf("cannot read %q as LOCAL[:CONTAINER]", string(v))
	default:
		return PortForward{}, fmt.Errorf("unexpected %s", v.Type())
	}
}

// listOf returns the elements of a list or tuple, a single value as a one-element list, and None as none.
func listOf(v starlark.Value) []starlark.Value {
	switch v := v.(type) {
	case nil, starlark.NoneType:
		return nil
	case starlark.Indexable:
		if _, isStr := v.(starlark.String); !isStr {
			out := make([]starlark.Value, v.Len())
			for i := range out {
				out[i] = v.Index(i)
			}
			return out
		}
	}
	return []starlark.Value{v}
}

// stringList reads a string or a list of strings (None is empty).
func stringList(fn, param string, v starlark.Value) ([]string, error) {
	var out []string
	for _, e := range listOf(v) {
		s, ok := starlark.AsString(e)
		if !ok {
			return nil, fmt.Errorf("%s: %s: want strings, got %s", fn, param, e.Type())
		}
		out = append(out, s)
	}
	return out, nil
}
