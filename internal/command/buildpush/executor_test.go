package buildpush

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCertDirs(t *testing.T) {
	tests := []struct {
		name    string
		current string
		kaniko  bool
		extra   []string
		want    string
	}{
		{name: "a host without /kaniko: Go's defaults", want: ""},
		{name: "hoist's image: the system's and kaniko's", kaniko: true, want: "/etc/ssl/certs:/kaniko/ssl/certs"},
		{name: "the job's SSL_CERT_DIR wins", current: "/certs", kaniko: true, want: "/certs"},
		{name: "--registry-certificate adds its directory", kaniko: true, extra: []string{"/builds/ca"}, want: "/etc/ssl/certs:/kaniko/ssl/certs:/builds/ca"},
		{name: "--registry-certificate on a host", extra: []string{"/ca"}, want: "/etc/ssl/certs:/ca"},
		{name: "--registry-certificate after the job's", current: "/certs", extra: []string{"/ca"}, want: "/certs:/ca"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, certDirs(tc.current, tc.kaniko, tc.extra))
		})
	}
}
