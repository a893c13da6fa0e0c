package hoist

import (
	_ "github.com/Masterminds/semver/v3"
	_ "github.com/awslabs/amazon-ecr-credential-helper/ecr-login"
	_ "github.com/chrismellard/docker-credential-acr-env/pkg/credhelper"
	_ "github.com/go-git/go-git/v5"
	_ "github.com/google/go-containerregistry/pkg/authn"
	_ "github.com/google/go-containerregistry/pkg/registry"
	_ "github.com/google/go-containerregistry/pkg/v1/google"
	_ "github.com/google/go-containerregistry/pkg/v1/remote"
	_ "github.com/google/go-containerregistry/pkg/v1/tarball"
	_ "github.com/google/go-containerregistry/pkg/v1/mutate"
	_ "github.com/google/go-containerregistry/pkg/v1/random"
	_ "github.com/santhosh-tekuri/jsonschema/v6"
	_ "github.com/sethvargo/go-githubactions"
	_ "github.com/stretchr/testify/require"
	_ "golang.org/x/sync/errgroup"
	_ "sigs.k8s.io/yaml"
	_ "gopkg.in/yaml.v3"
)
