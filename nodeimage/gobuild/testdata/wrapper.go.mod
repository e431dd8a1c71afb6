module kinc.invalid/gobuild

go 1.24.0

godebug default=go1.24

require k8s.io/kubernetes v1.34.4

exclude example.com/bad v0.1.0

replace (
	example.com/forked v1.0.0 => example.com/fork v1.0.1
	example.com/other => example.com/other v0.34.4
	example.com/overridden => example.com/overridden v2.0.0+incompatible
	k8s.io/api => k8s.io/api v0.34.4
	k8s.io/client-go => k8s.io/client-go v0.34.4
)
