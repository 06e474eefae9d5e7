package cli

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/myriad-ai/myriad/config"
	"github.com/myriad-ai/myriad/engine"
)

// clusterFlags are serve's flags for joining a cluster of Myriad nodes;
// each overrides its key under server.cluster in myriad.yaml.
type clusterFlags struct {
	name, listen, routes, node *string
	replicas                   *int
}

// DefaultClusterSecretEnv holds the cluster's secret when
// server.cluster.secret_env names no other variable.
const DefaultClusterSecretEnv = "MYRIAD_CLUSTER_SECRET"

func addClusterFlags(fs *flag.FlagSet) clusterFlags {
	return clusterFlags{
		name:     fs.String("cluster-name", "", "join a cluster of Myriad nodes by this name (server.cluster.name)"),
		listen:   fs.String("cluster-listen", "", "HOST:PORT this node's cluster routes listen on (server.cluster.listen)"),
		routes:   fs.String("routes", "", "the nodes' route addresses, comma-separated HOST:PORT (server.cluster.routes)"),
		node:     fs.String("node-name", "", "this node's name in the cluster, stable across restarts (default: host name and route port)"),
		replicas: fs.Int("replicas", 0, "copies of each stream and bucket on a cluster (default 3 with three nodes or more, else 1)"),
	}
}

// cluster merges the flags with the config; nil when the node joins no
// cluster of its own.
func (f clusterFlags) cluster(cfg *config.Config) (*engine.Cluster, error) {
	cc := config.Cluster{}
	if cfg.Server.Cluster != nil {
		cc = *cfg.Server.Cluster
	}
	if *f.name != "" {
		cc.Name = *f.name
	}
	if *f.listen != "" {
		cc.Listen = *f.listen
	}
	if *f.routes != "" {
		cc.Routes = strings.Split(*f.routes, ",")
	}
	if *f.node != "" {
		cc.NodeName = *f.node
	}
	if cc.Name == "" && cc.Listen == "" && len(cc.Routes) == 0 {
		return nil, nil
	}
	if err := cc.Check(); err != nil {
		return nil, &exitError{code: 2, err: fmt.Errorf("cluster: %w (flags --cluster-name, --cluster-listen, --routes)", err)}
	}
	if cc.NodeName == "" {
		host, _ := os.Hostname()
		_, port, _ := net.SplitHostPort(cc.Listen)
		cc.NodeName = nodeName(host + "-" + port)
	}
	secretEnv := cc.SecretEnv
	if secretEnv == "" {
		secretEnv = DefaultClusterSecretEnv
	}
	secret := os.Getenv(secretEnv)
	if cc.SecretEnv != "" && secret == "" {
		return nil, fmt.Errorf("server.cluster.secret_env: environment variable %s is empty or unset", cc.SecretEnv)
	}
	if secret == "" && !loopback(cc.Listen) {
		return nil, errors.New("refusing to open cluster routes on " + cc.Listen + " without a secret: set " + DefaultClusterSecretEnv +
			" (or the variable server.cluster.secret_env names) to the same secret on every node, or listen on 127.0.0.1")
	}
	return &engine.Cluster{Name: cc.Name, NodeName: cc.NodeName, Listen: cc.Listen, Routes: cc.Routes, Secret: secret}, nil
}

// nodeName keeps the characters a NATS server name may have.
func nodeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, s)
}
