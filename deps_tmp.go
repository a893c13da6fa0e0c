// Blank imports that keep modules the tools in progress need in go.mod while
// several people work in the tree; removed once every import is real.

package hoist

import (
	_ "github.com/Masterminds/semver/v3"
	_ "github.com/awslabs/amazon-ecr-credential-helper/ecr-login"
	_ "github.com/bmatcuk/doublestar/v4"
	_ "github.com/chrismellard/docker-credential-acr-env/pkg/credhelper"
	_ "github.com/go-git/go-git/v5"
	_ "github.com/google/go-containerregistry/pkg/authn"
	_ "github.com/google/go-containerregistry/pkg/registry"
	_ "github.com/google/go-containerregistry/pkg/v1/google"
	_ "github.com/google/go-containerregistry/pkg/v1/mutate"
	_ "github.com/google/go-containerregistry/pkg/v1/random"
	_ "github.com/google/go-containerregistry/pkg/v1/remote"
	_ "github.com/google/go-containerregistry/pkg/v1/tarball"
	_ "github.com/google/go-github/v74/github"
	_ "github.com/klauspost/compress/zstd"
	_ "github.com/klauspost/pgzip"
	_ "github.com/moby/buildkit/frontend/dockerfile/instructions"
	_ "github.com/moby/buildkit/frontend/dockerfile/linter"
	_ "github.com/moby/buildkit/frontend/dockerfile/parser"
	_ "github.com/moby/buildkit/frontend/dockerfile/shell"
	_ "github.com/santhosh-tekuri/jsonschema/v6"
	_ "github.com/sethvargo/go-githubactions"
	_ "github.com/stretchr/testify/require"
	_ "gitlab.com/gitlab-org/api/client-go"
	_ "golang.org/x/crypto/bcrypt"
	_ "golang.org/x/net/http/httpproxy"
	_ "golang.org/x/sync/errgroup"
	_ "gopkg.in/yaml.v3"
	_ "sigs.k8s.io/kustomize/kyaml/yaml"
	_ "sigs.k8s.io/yaml"
)
