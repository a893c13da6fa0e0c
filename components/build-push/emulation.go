package buildpush

import (
	"fmt"
	"strings"
)

// hostPlatform is the platform RUN commands execute natively.
func hostPlatform() string { return "linux/" + hostArch() }

// checkEmulation refuses a RUN for a platform this host cannot execute.
func checkEmulation(root, platform string) error {
	if platform == "" || strings.HasPrefix(platform+"/", hostPlatform()+"/") {
		return nil
	}
	return fmt.Errorf("RUN for %s needs an emulator on this %s host", platform, hostPlatform())
}
