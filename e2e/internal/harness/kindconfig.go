package harness

import (
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

// KindConfig is the part of kind-config.yaml the kit depends on.
type KindConfig struct {
	Name  string `json:"name"`
	Nodes []struct {
		Role              string `json:"role"`
		ExtraPortMappings []struct {
			ContainerPort int32  `json:"containerPort"`
			HostPort      int32  `json:"hostPort"`
			ListenAddress string `json:"listenAddress"`
		} `json:"extraPortMappings"`
	} `json:"nodes"`
}

// ReadKindConfig reads a kind cluster configuration file.
func ReadKindConfig(path string) (KindConfig, error) {
	var c KindConfig
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("kind config: %w", err)
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("kind config %s: %w", path, err)
	}
	return c, nil
}

// HostPortFor returns the host port mapped to a node port (0 when none).
func (c KindConfig) HostPortFor(nodePort int32) int32 {
	for _, n := range c.Nodes {
		for _, pm := range n.ExtraPortMappings {
			if pm.ContainerPort == nodePort {
				return pm.HostPort
			}
		}
	}
	return 0
}

// HostPorts returns every host port the configuration maps.
func (c KindConfig) HostPorts() []int32 {
	var out []int32
	for _, n := range c.Nodes {
		for _, pm := range n.ExtraPortMappings {
			out = append(out, pm.HostPort)
		}
	}
	return out
}
