package main

import (
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"
)

// The Kubernetes manifests in deploy/kubernetes parse, fit together (names,
// selectors, probes) and carry a configuration trustproxy accepts.
func TestKubernetesManifests(t *testing.T) {
	dir := filepath.Join("..", "..", "deploy", "kubernetes")
	type object struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Data map[string]string `json:"data"`
		Spec struct {
			Replicas *int `json:"replicas"`
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			MinAvailable any `json:"minAvailable"`
			Template     struct {
				Metadata struct {
					Labels map[string]string `json:"labels"`
				} `json:"metadata"`
				Spec struct {
					Containers []struct {
						Args           []string `json:"args"`
						ReadinessProbe struct {
							HTTPGet struct {
								Path string `json:"path"`
							} `json:"httpGet"`
						} `json:"readinessProbe"`
						EnvFrom []struct {
							SecretRef struct {
								Name string `json:"name"`
							} `json:"secretRef"`
						} `json:"envFrom"`
					} `json:"containers"`
					Volumes []struct {
						ConfigMap *struct {
							Name string `json:"name"`
						} `json:"configMap"`
					} `json:"volumes"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
		Resources []string `json:"resources"`
	}
	objs := map[string]object{}
	var resources []string
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", dir, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var o object
		if err := yaml.Unmarshal(b, &o); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if o.Kind == "Service" {
			var svc struct {
				Spec struct {
					Selector map[string]string `json:"selector"`
				} `json:"spec"`
			}
			if err := yaml.Unmarshal(b, &svc); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			o.Spec.Selector.MatchLabels = svc.Spec.Selector
		}
		if o.Kind == "Kustomization" {
			resources = o.Resources
			continue
		}
		objs[o.Kind] = o
	}
	for _, kind := range []string{"ConfigMap", "Secret", "Deployment", "Service", "PodDisruptionBudget"} {
		if _, ok := objs[kind]; !ok {
			t.Errorf("no %s manifest", kind)
		}
	}
	if len(resources) != len(files)-1 {
		t.Errorf("kustomization lists %d resources, %d manifests exist", len(resources), len(files)-1)
	}
	dep := objs["Deployment"]
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas < 2 {
		t.Errorf("deployment replicas: %v", dep.Spec.Replicas)
	}
	c := dep.Spec.Template.Spec.Containers
	if len(c) != 1 || c[0].ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Fatalf("deployment container / readiness probe: %+v", c)
	}
	if len(c[0].EnvFrom) != 1 || c[0].EnvFrom[0].SecretRef.Name != objs["Secret"].Metadata.Name {
		t.Errorf("deployment does not take its keys from the Secret %q", objs["Secret"].Metadata.Name)
	}
	usesConfigMap := false
	for _, v := range dep.Spec.Template.Spec.Volumes {
		usesConfigMap = usesConfigMap || (v.ConfigMap != nil && v.ConfigMap.Name == objs["ConfigMap"].Metadata.Name)
	}
	if !usesConfigMap {
		t.Error("deployment does not mount the ConfigMap")
	}
	labels := dep.Spec.Template.Metadata.Labels
	for _, kind := range []string{"Deployment", "PodDisruptionBudget", "Service"} {
		if len(objs[kind].Spec.Selector.MatchLabels) == 0 {
			t.Errorf("%s selects nothing", kind)
		}
		for k, v := range objs[kind].Spec.Selector.MatchLabels {
			if labels[k] != v {
				t.Errorf("%s selector %s=%s does not match the pods", kind, k, v)
			}
		}
	}
	// The configuration in the ConfigMap is one trustproxy accepts.
	cfgDir := t.TempDir()
	path := filepath.Join(cfgDir, "config.yaml")
	if err := os.WriteFile(path, []byte(objs["ConfigMap"].Data["config.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatalf("ConfigMap config.yaml: %v", err)
	}
	if cfg.Storage.Driver != "s3" || cfg.State == "" {
		t.Errorf("ConfigMap config: driver %q, state %q; replicas need s3 and their own state", cfg.Storage.Driver, cfg.State)
	}
}
