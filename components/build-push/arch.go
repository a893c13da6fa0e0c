package buildpush

import "runtime"

const goarch = runtime.GOARCH
