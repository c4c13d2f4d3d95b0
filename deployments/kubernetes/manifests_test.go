package kubernetes

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// vigil builds the repository's vigil binary once and reads what the checks
// need of it.
func vigil(t *testing.T) Commands {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "vigil")
	build := exec.Command("go", "build", "-o", bin, "./cmd/vigil")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build vigil: %v\n%s", err, out)
	}
	cmds := Commands{Flags: map[string]map[string]bool{}, Variables: map[string]map[string]bool{}}
	for _, c := range []string{"process", "gateway"} {
		out, err := exec.Command(bin, c, "--help").CombinedOutput()
		if err != nil {
			t.Fatalf("vigil %s --help: %v\n%s", c, err, out)
		}
		cmds.Flags[c], cmds.Variables[c] = ParseHelp(out)
		if !cmds.Flags[c]["config"] || !cmds.Variables[c]["VIGIL_KAFKA"] {
			t.Fatalf("vigil %s --help: no --config or VIGIL_KAFKA read (the help format changed?)\n%s", c, out)
		}
	}
	n := 0
	cmds.Validate = func(config []byte) error {
		n++
		path := filepath.Join(dir, fmt.Sprintf("config-%d.yaml", n))
		if err := os.WriteFile(path, config, 0o600); err != nil {
			return err
		}
		cmd := exec.Command(bin, "config", "validate", "--config", path)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")} // no VIGIL_* of the test's environment
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%v: %s", err, bytes.TrimSpace(out))
		}
		return nil
	}
	return cmds
}

// vigil.yaml decodes strictly into the API types and agrees with the vigil
// binary and with itself; each mutation below is caught.
func TestManifests(t *testing.T) {
	file, err := os.ReadFile("vigil.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cmds := vigil(t)
	if problems := Check(file, cmds); len(problems) > 0 {
		t.Fatalf("vigil.yaml:\n%s", strings.Join(problems, "\n"))
	}
	if got := len(Split(file)); got != 7 {
		t.Errorf("vigil.yaml has %d documents, want 7 (ConfigMap, Secret, 2 Deployments, 2 Services, ScaledObject)", got)
	}

	cases := []struct {
		name, old, new, want string
	}{
		{"unknown field", "  minReplicaCount: 1", "  minReplicas: 1", `ScaledObject vigil-process: error unmarshaling JSON: while decoding JSON: json: unknown field "minReplicas"`},
		{"unknown API field", "          readinessProbe:\n            httpGet:\n              path: /readyz\n              port: metrics", "          readinessProbe:\n            httpGet:\n              path: /readyz\n              port: metrics\n              timeout: 3", `Deployment vigil-process: error unmarshaling JSON: while decoding JSON: json: unknown field "timeout"`},
		{"unknown flag", `--http-addr, ":9464"`, `--http-address, ":9464"`, "vigil process has no flag --http-address"},
		{"flag of another command", `--gateway-tokens, /etc/vigil-secrets`, `--alert-ruls, /etc/vigil-secrets`, "vigil gateway has no flag --alert-ruls"},
		{"unknown variable", "- name: VIGIL_MAX_MEMORY", "- name: VIGIL_MAX_MEM", "variable VIGIL_MAX_MEM is neither"},
		{"bad config key", "      allowed_lateness: 30s", "      lateness: 30s", "does not pass vigil config validate"},
		{"bad config value", "      size: 1m", "      size: a minute", "does not pass vigil config validate"},
		{"selector", "    matchLabels:\n      app.kubernetes.io/name: vigil-gateway", "    matchLabels:\n      app.kubernetes.io/name: vigil-gw", "selector app.kubernetes.io/name=vigil-gw does not match"},
		{"service port", "      targetPort: http", "      targetPort: web", "targetPort web is no container port"},
		{"secret key", "key: clickhouse-password", "key: ch-password", "Secret vigil-secrets has no key ch-password"},
		{"scaled target", "    name: vigil-process\n  minReplicaCount", "    name: vigil-processor\n  minReplicaCount", "scaleTargetRef Deployment vigil-processor is not a Deployment"},
		{"trigger parameter", "        lagThreshold:", "        lag:", "lag is not a parameter of KEDA's kafka scaler"},
		{"trigger group", "        consumerGroup: vigil-processor", "        consumerGroup: vigil", `consumerGroup "vigil", the processors' group is "vigil-processor"`},
		{"too many replicas", "  maxReplicaCount: 12", "  maxReplicaCount: 24", "maxReplicaCount 24 is more than the topic's 12 partitions"},
		{"token variable unset", "            - name: VIGIL_TOKEN_SERVING", "            - name: VIGIL_TOKEN_SERVICE", "the tokens file reads VIGIL_TOKEN_SERVING"},
		{"config not mounted", "--config, /etc/vigil/vigil.yaml, --http-addr, \":9464\"", "--config, /etc/vigil.yaml, --http-addr, \":9464\"", "--config /etc/vigil.yaml is not in a mounted"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !bytes.Contains(file, []byte(c.old)) {
				t.Fatalf("vigil.yaml has no %q to change", c.old)
			}
			problems := Check(bytes.Replace(file, []byte(c.old), []byte(c.new), 1), cmds)
			joined := strings.Join(problems, "\n")
			if !strings.Contains(joined, c.want) {
				t.Errorf("problems:\n%s\nwant one containing %q", joined, c.want)
			}
		})
	}
}
