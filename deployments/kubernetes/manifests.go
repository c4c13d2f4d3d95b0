package kubernetes

import (
	"bufio"
	"bytes"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// ScaledObject is KEDA's keda.sh/v1alpha1 ScaledObject, the fields KEDA
// documents (keda.sh/docs, "Scaling Deployments": ScaledObject
// specification), decoded as strictly as the API types.
type ScaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              ScaledObjectSpec `json:"spec"`
}

// ScaledObjectSpec is the spec of a ScaledObject.
type ScaledObjectSpec struct {
	ScaleTargetRef        ScaleTarget `json:"scaleTargetRef"`
	PollingInterval       *int32      `json:"pollingInterval,omitempty"`
	InitialCooldownPeriod *int32      `json:"initialCooldownPeriod,omitempty"`
	CooldownPeriod        *int32      `json:"cooldownPeriod,omitempty"`
	IdleReplicaCount      *int32      `json:"idleReplicaCount,omitempty"`
	MinReplicaCount       *int32      `json:"minReplicaCount,omitempty"`
	MaxReplicaCount       *int32      `json:"maxReplicaCount,omitempty"`
	Advanced              *Advanced   `json:"advanced,omitempty"`
	Triggers              []Trigger   `json:"triggers"`
	Fallback              *Fallback   `json:"fallback,omitempty"`
}

// ScaleTarget names the workload a ScaledObject scales.
type ScaleTarget struct {
	APIVersion             string `json:"apiVersion,omitempty"`
	Kind                   string `json:"kind,omitempty"`
	Name                   string `json:"name"`
	EnvSourceContainerName string `json:"envSourceContainerName,omitempty"`
}

// Advanced is a ScaledObject's advanced section.
type Advanced struct {
	RestoreToOriginalReplicaCount bool                           `json:"restoreToOriginalReplicaCount,omitempty"`
	HorizontalPodAutoscalerConfig *HorizontalPodAutoscalerConfig `json:"horizontalPodAutoscalerConfig,omitempty"`
}

// HorizontalPodAutoscalerConfig configures the HPA KEDA creates.
type HorizontalPodAutoscalerConfig struct {
	Name     string                                         `json:"name,omitempty"`
	Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`
}

// Fallback is the replica count while the scaler fails.
type Fallback struct {
	FailureThreshold int32 `json:"failureThreshold"`
	Replicas         int32 `json:"replicas"`
}

// Trigger is one scaler of a ScaledObject.
type Trigger struct {
	Type              string                         `json:"type"`
	Name              string                         `json:"name,omitempty"`
	UseCachedMetrics  bool                           `json:"useCachedMetrics,omitempty"`
	MetricType        autoscalingv2.MetricTargetType `json:"metricType,omitempty"`
	Metadata          map[string]string              `json:"metadata"`
	AuthenticationRef *struct {
		Name string `json:"name"`
		Kind string `json:"kind,omitempty"`
	} `json:"authenticationRef,omitempty"`
}

// kafkaMetadata are the parameters KEDA's kafka scaler documents.
var kafkaMetadata = []string{
	"bootstrapServers", "consumerGroup", "topic", "lagThreshold", "activationLagThreshold", "offsetResetPolicy",
	"allowIdleConsumers", "excludePersistentLag", "scaleToZeroOnInvalidOffset", "limitToPartitionsWithLag",
	"ensureEvenDistributionOfPartitions", "partitionLimitation", "version", "sasl", "tls", "unsafeSsl",
}

// Commands is what the checks know of the vigil binary: per command, its
// flags and variables (from `vigil <command> --help`), and a check of a
// config file (`vigil config validate --config`).
type Commands struct {
	Flags     map[string]map[string]bool // command -> flag names without "--"
	Variables map[string]map[string]bool // command -> VIGIL_* names
	Validate  func(configYAML []byte) error
}

var (
	flagRE = regexp.MustCompile(`^\s+--([a-z0-9-]+)`)
	varRE  = regexp.MustCompile(`\[\$(VIGIL_[A-Z0-9_]+)`)
)

// ParseHelp reads the flags and variables of one command's --help.
func ParseHelp(help []byte) (flags, vars map[string]bool) {
	flags, vars = map[string]bool{}, map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(help))
	for sc.Scan() {
		if m := flagRE.FindStringSubmatch(sc.Text()); m != nil {
			flags[m[1]] = true
		}
		for _, m := range varRE.FindAllStringSubmatch(sc.Text(), -1) {
			vars[m[1]] = true
		}
	}
	return flags, vars
}

// strict decodes one YAML document into v, refusing unknown fields.
func strict(doc []byte, v any) error { return yaml.UnmarshalStrict(doc, v) }

// Split splits a multi-document YAML file, dropping empty documents.
func Split(file []byte) [][]byte {
	var out [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(file), -1) {
		if strings.TrimSpace(stripComments(d)) != "" {
			out = append(out, []byte(d))
		}
	}
	return out
}

func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// manifests are the decoded documents, by kind and name.
type manifests struct {
	configMaps   map[string]*corev1.ConfigMap
	secrets      map[string]*corev1.Secret
	deployments  map[string]*appsv1.Deployment
	services     map[string]*corev1.Service
	scaledObject map[string]*ScaledObject
}

// Check decodes the documents of a manifest file strictly and checks them
// against each other and against the vigil commands; it returns every
// problem found.
func Check(file []byte, cmds Commands) []string {
	var problems []string
	bad := func(f string, a ...any) { problems = append(problems, fmt.Sprintf(f, a...)) }
	m := manifests{map[string]*corev1.ConfigMap{}, map[string]*corev1.Secret{}, map[string]*appsv1.Deployment{},
		map[string]*corev1.Service{}, map[string]*ScaledObject{}}
	for i, doc := range Split(file) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			bad("document %d: %v", i+1, err)
			continue
		}
		var err error
		var name string
		switch gvk := tm.APIVersion + "/" + tm.Kind; gvk {
		case "v1/ConfigMap":
			var o corev1.ConfigMap
			err, name = strict(doc, &o), o.Name
			m.configMaps[name] = &o
		case "v1/Secret":
			var o corev1.Secret
			err, name = strict(doc, &o), o.Name
			m.secrets[name] = &o
		case "apps/v1/Deployment":
			var o appsv1.Deployment
			err, name = strict(doc, &o), o.Name
			m.deployments[name] = &o
		case "v1/Service":
			var o corev1.Service
			err, name = strict(doc, &o), o.Name
			m.services[name] = &o
		case "keda.sh/v1alpha1/ScaledObject":
			var o ScaledObject
			err, name = strict(doc, &o), o.Name
			m.scaledObject[name] = &o
		default:
			bad("document %d: kind %s not known to the check", i+1, gvk)
			continue
		}
		if err != nil {
			bad("%s %s: %v", tm.Kind, name, err)
		}
		if name == "" {
			bad("document %d (%s): no metadata.name", i+1, tm.Kind)
		}
	}
	for name, d := range m.deployments {
		problems = append(problems, m.checkDeployment(name, d, cmds)...)
	}
	for name, s := range m.services {
		problems = append(problems, m.checkService(name, s)...)
	}
	for name, so := range m.scaledObject {
		problems = append(problems, m.checkScaledObject(name, so)...)
	}
	slices.Sort(problems)
	return problems
}

func (m manifests) secretHas(name, key string) bool {
	s := m.secrets[name]
	if s == nil {
		return false
	}
	_, a := s.StringData[key]
	_, b := s.Data[key]
	return a || b
}

func (m manifests) configMapHas(name, key string) bool {
	c := m.configMaps[name]
	if c == nil {
		return false
	}
	_, ok := c.Data[key]
	return ok
}

// mounted returns the ConfigMap or Secret key that file is in the pod, if a
// volume mounts it: kind "configMap" or "secret".
func mounted(pod *corev1.PodSpec, c *corev1.Container, file string) (kind, name, key string, ok bool) {
	for _, vm := range c.VolumeMounts {
		if path.Dir(file) != path.Clean(vm.MountPath) {
			continue
		}
		base := path.Base(file)
		for _, v := range pod.Volumes {
			if v.Name != vm.Name {
				continue
			}
			switch {
			case v.ConfigMap != nil:
				return "configMap", v.ConfigMap.Name, itemKey(v.ConfigMap.Items, base), true
			case v.Secret != nil:
				return "secret", v.Secret.SecretName, itemKey(v.Secret.Items, base), true
			}
		}
	}
	return "", "", "", false
}

// itemKey is the key a volume with items projects to file base.
func itemKey(items []corev1.KeyToPath, base string) string {
	if len(items) == 0 {
		return base
	}
	for _, it := range items {
		if it.Path == base {
			return it.Key
		}
	}
	return ""
}

func (m manifests) checkDeployment(name string, d *appsv1.Deployment, cmds Commands) []string {
	var problems []string
	bad := func(f string, a ...any) {
		problems = append(problems, fmt.Sprintf("Deployment %s: ", name)+fmt.Sprintf(f, a...))
	}
	pod := &d.Spec.Template.Spec
	if d.Spec.Selector == nil || len(d.Spec.Selector.MatchLabels) == 0 {
		bad("no selector.matchLabels")
	} else {
		for k, v := range d.Spec.Selector.MatchLabels {
			if d.Spec.Template.Labels[k] != v {
				bad("selector %s=%s does not match the pod template's labels", k, v)
			}
		}
	}
	volumes := map[string]bool{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = true
		if v.ConfigMap != nil {
			if m.configMaps[v.ConfigMap.Name] == nil {
				bad("volume %s: no ConfigMap %s", v.Name, v.ConfigMap.Name)
			}
			for _, it := range v.ConfigMap.Items {
				if !m.configMapHas(v.ConfigMap.Name, it.Key) {
					bad("volume %s: ConfigMap %s has no key %s", v.Name, v.ConfigMap.Name, it.Key)
				}
			}
		}
		if v.Secret != nil {
			if m.secrets[v.Secret.SecretName] == nil {
				bad("volume %s: no Secret %s", v.Name, v.Secret.SecretName)
			}
			for _, it := range v.Secret.Items {
				if !m.secretHas(v.Secret.SecretName, it.Key) {
					bad("volume %s: Secret %s has no key %s", v.Name, v.Secret.SecretName, it.Key)
				}
			}
		}
	}
	if len(pod.Containers) == 0 {
		bad("no container")
	}
	for i := range pod.Containers {
		c := &pod.Containers[i]
		ports := map[string]bool{}
		for _, p := range c.Ports {
			ports[p.Name] = true
		}
		for _, vm := range c.VolumeMounts {
			if !volumes[vm.Name] {
				bad("container %s mounts volume %s, which the pod does not have", c.Name, vm.Name)
			}
		}
		for what, p := range map[string]*corev1.Probe{"readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe} {
			if p != nil && p.HTTPGet != nil && p.HTTPGet.Port.StrVal != "" && !ports[p.HTTPGet.Port.StrVal] {
				bad("container %s: %s port %s is not a container port", c.Name, what, p.HTTPGet.Port.StrVal)
			}
		}
		if len(c.Args) == 0 {
			bad("container %s: no args (want a vigil command)", c.Name)
			continue
		}
		cmd := c.Args[0]
		flags := cmds.Flags[cmd]
		if flags == nil {
			bad("container %s: %q is not a vigil command the check knows", c.Name, cmd)
			continue
		}
		// Variables a mounted gateway tokens file reads (token: env:NAME).
		tokenVars := map[string]bool{}
		for j := 1; j < len(c.Args); j++ {
			a := c.Args[j]
			if !strings.HasPrefix(a, "--") {
				continue
			}
			flag, value, inline := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			if !flags[flag] {
				bad("container %s: vigil %s has no flag --%s", c.Name, cmd, flag)
				continue
			}
			if !inline && j+1 < len(c.Args) && !strings.HasPrefix(c.Args[j+1], "--") {
				value = c.Args[j+1]
				j++
			}
			switch flag {
			case "config", "gateway-tokens":
				kind, src, key, ok := mounted(pod, c, value)
				if !ok {
					bad("container %s: --%s %s is not in a mounted ConfigMap or Secret", c.Name, flag, value)
					continue
				}
				var data string
				switch kind {
				case "configMap":
					if c := m.configMaps[src]; c != nil {
						data = c.Data[key]
					}
				case "secret":
					if s := m.secrets[src]; s != nil {
						data = s.StringData[key]
						if data == "" {
							data = string(s.Data[key])
						}
					}
				}
				if data == "" {
					bad("container %s: --%s %s: %s %s has no key %q", c.Name, flag, value, kind, src, key)
					continue
				}
				if flag == "config" && cmds.Validate != nil {
					if err := cmds.Validate([]byte(data)); err != nil {
						bad("container %s: the config file %s (%s %s) does not pass vigil config validate: %v", c.Name, value, kind, src, err)
					}
				}
				if flag == "gateway-tokens" {
					for _, mm := range regexp.MustCompile(`env:([A-Za-z_][A-Za-z0-9_]*)`).FindAllStringSubmatch(data, -1) {
						tokenVars[mm[1]] = true
					}
				}
			}
		}
		for _, e := range c.Env {
			switch {
			case cmds.Variables[cmd][e.Name]:
			case tokenVars[e.Name]:
			default:
				bad("container %s: variable %s is neither an option of vigil %s nor read by its tokens file", c.Name, e.Name, cmd)
			}
			if e.ValueFrom != nil {
				if r := e.ValueFrom.SecretKeyRef; r != nil && !m.secretHas(r.Name, r.Key) {
					bad("container %s: variable %s: Secret %s has no key %s", c.Name, e.Name, r.Name, r.Key)
				}
				if r := e.ValueFrom.ConfigMapKeyRef; r != nil && !m.configMapHas(r.Name, r.Key) {
					bad("container %s: variable %s: ConfigMap %s has no key %s", c.Name, e.Name, r.Name, r.Key)
				}
			}
		}
		for v := range tokenVars {
			if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == v }) {
				bad("container %s: the tokens file reads %s, which the container does not set", c.Name, v)
			}
		}
	}
	return problems
}

func (m manifests) checkService(name string, s *corev1.Service) []string {
	var problems []string
	bad := func(f string, a ...any) {
		problems = append(problems, fmt.Sprintf("Service %s: ", name)+fmt.Sprintf(f, a...))
	}
	var target *appsv1.Deployment
	for _, d := range m.deployments {
		match := len(s.Spec.Selector) > 0
		for k, v := range s.Spec.Selector {
			if d.Spec.Template.Labels[k] != v {
				match = false
			}
		}
		if match {
			target = d
		}
	}
	if target == nil {
		bad("selector %v selects no Deployment's pods", s.Spec.Selector)
		return problems
	}
	for _, p := range s.Spec.Ports {
		if p.TargetPort.StrVal == "" {
			continue
		}
		found := false
		for _, c := range target.Spec.Template.Spec.Containers {
			for _, cp := range c.Ports {
				found = found || cp.Name == p.TargetPort.StrVal
			}
		}
		if !found {
			bad("port %s: targetPort %s is no container port of Deployment %s", p.Name, p.TargetPort.StrVal, target.Name)
		}
	}
	return problems
}

// vigilConfig is the part of the config file the ScaledObject must agree with.
type vigilConfig struct {
	Kafka struct {
		Topic      string `json:"topic"`
		Partitions int32  `json:"partitions"`
		Group      string `json:"group"`
	} `json:"kafka"`
}

func (m manifests) checkScaledObject(name string, so *ScaledObject) []string {
	var problems []string
	bad := func(f string, a ...any) {
		problems = append(problems, fmt.Sprintf("ScaledObject %s: ", name)+fmt.Sprintf(f, a...))
	}
	ref := so.Spec.ScaleTargetRef
	d := m.deployments[ref.Name]
	if (ref.Kind != "" && ref.Kind != "Deployment") || d == nil {
		bad("scaleTargetRef %s %s is not a Deployment of the file", ref.Kind, ref.Name)
		return problems
	}
	// The processors' config: the ConfigMap their --config names.
	var cfg vigilConfig
	for _, c := range d.Spec.Template.Spec.Containers {
		if i := slices.Index(c.Args, "--config"); i >= 0 && i+1 < len(c.Args) {
			if kind, src, key, ok := mounted(&d.Spec.Template.Spec, &c, c.Args[i+1]); ok && kind == "configMap" && m.configMaps[src] != nil {
				if err := yaml.Unmarshal([]byte(m.configMaps[src].Data[key]), &cfg); err != nil {
					bad("read the config of %s: %v", d.Name, err)
				}
			}
		}
	}
	if len(so.Spec.Triggers) == 0 {
		bad("no trigger")
	}
	for _, tr := range so.Spec.Triggers {
		if tr.Type != "kafka" {
			bad("trigger %s: only kafka is checked", tr.Type)
			continue
		}
		for k := range tr.Metadata {
			if !slices.Contains(kafkaMetadata, k) {
				bad("kafka trigger: %s is not a parameter of KEDA's kafka scaler", k)
			}
		}
		for _, k := range []string{"bootstrapServers", "consumerGroup", "topic"} {
			if tr.Metadata[k] == "" {
				bad("kafka trigger: no %s", k)
			}
		}
		if cfg.Kafka.Group != "" && tr.Metadata["consumerGroup"] != cfg.Kafka.Group {
			bad("kafka trigger: consumerGroup %q, the processors' group is %q", tr.Metadata["consumerGroup"], cfg.Kafka.Group)
		}
		if cfg.Kafka.Topic != "" && tr.Metadata["topic"] != cfg.Kafka.Topic {
			bad("kafka trigger: topic %q, the processors read %q", tr.Metadata["topic"], cfg.Kafka.Topic)
		}
	}
	if mx := so.Spec.MaxReplicaCount; mx != nil && cfg.Kafka.Partitions > 0 && *mx > cfg.Kafka.Partitions {
		bad("maxReplicaCount %d is more than the topic's %d partitions: the extra members would idle", *mx, cfg.Kafka.Partitions)
	}
	return problems
}
