// Package kubernetes checks Vigil's Kubernetes manifests (vigil.yaml): a
// module of its own, so that the Kubernetes API types stay out of the main
// module's go.mod. Its test (run by deployments/local/test.sh) decodes
// every document strictly into the k8s.io/api types (KEDA's ScaledObject
// into the fields KEDA documents for keda.sh/v1alpha1, as KEDA's Go types
// would pull in a controller framework), and checks what the API server
// cannot: that every flag and VIGIL_* variable is one the named `vigil`
// command has, that the config file in the ConfigMap passes `vigil config
// validate`, and that selectors, ports, volumes, secrets and the scaled
// target name each other.
package kubernetes
