// Package deploy holds the deployment files of sipasd (Dockerfile, compose
// with Prometheus and Grafana, Kubernetes manifests, systemd unit) and no
// code: its tests check those files statically, and check that every metric
// the dashboards and alerts use is exported by the real server and that
// docs/operations.md documents every flag of sipasd.
package deploy
