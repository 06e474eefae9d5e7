package config

import (
	"fmt"
	"net"
	"strconv"

	"gopkg.in/yaml.v3"
)

// Cluster makes the embedded NATS server of `myriad serve` a node of a
// cluster of Myriad nodes: each routes to the others, and JetStream
// replicates streams and buckets over them.
type Cluster struct {
	// Name is the cluster's, the same on every node.
	Name string `yaml:"name"`
	// Listen is the host:port this node's routes listen on.
	Listen string `yaml:"listen"`
	// Routes are the route addresses (host:port) of the nodes; this
	// node's own may be listed too, so every node can share one list.
	Routes []string `yaml:"routes,omitempty"`
	// NodeName is this node's name, unique in the cluster and the same
	// across restarts (default: the host name and the route port).
	NodeName string `yaml:"node_name,omitempty"`
	// SecretEnv names the variable that holds the secret routes
	// authenticate with; every node needs the same one.
	SecretEnv string               `yaml:"secret_env,omitempty"`
	Extra     map[string]yaml.Node `yaml:",inline"`
}

func (c *Config) validateCluster(add func(path, format string, args ...any)) {
	if r := c.Server.Replicas; r < 0 || r > 5 {
		add("server.replicas", "must be from 1 to 5 (left out: 3 on a cluster of three nodes or more, else 1)")
	}
	if cl := c.Server.Cluster; cl != nil {
		cl.check(add)
	}
}

// Check checks a cluster's settings on their own (flags merged into the
// file's): every problem, each naming its field.
func (cl *Cluster) Check() error {
	var errs Errors
	cl.check(func(path, format string, args ...any) {
		errs = append(errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	})
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func (cl *Cluster) check(add func(path, format string, args ...any)) {
	p := "server.cluster"
	unknownFields(add, p, cl.Extra, *cl)
	if !namePattern.MatchString(cl.Name) {
		add(p+".name", "missing or invalid: the cluster's name, the same on every node (letters, digits, '_' or '-')")
	}
	if msg := checkHostPort(cl.Listen); msg != "" {
		add(p+".listen", "%s", msg)
	}
	for i, r := range cl.Routes {
		if msg := checkHostPort(r); msg != "" {
			add(p+".routes["+strconv.Itoa(i)+"]", "%s", msg)
		}
	}
	if cl.NodeName != "" && !namePattern.MatchString(cl.NodeName) {
		add(p+".node_name", "invalid: use letters, digits, '_' or '-', starting with a letter")
	}
	if cl.SecretEnv != "" {
		if msg := checkEnvName(cl.SecretEnv); msg != "" {
			add(p+".secret_env", "%s", msg)
		}
	}
}

// checkHostPort explains what is wrong with a host:port, "" if nothing.
func checkHostPort(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1 || n > 65535 {
		return "write it HOST:PORT, like 10.0.0.1:6222"
	}
	return ""
}
