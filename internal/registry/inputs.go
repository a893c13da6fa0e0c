package registry

import (
	"log/slog"
)

// Inputs is what a tool's platform layer answers about the registry inputs
// every registry tool declares (internal/spec.RegistryInputs). internal/ci's
// Job satisfies it.
type Inputs interface {
	String(name string) string
	List(name string) []string
	Bool(name string) (bool, error)
	Getenv(key string) string
	Mask(secret string)
	// RegistryCredential is the platform's own credential for a registry
	// host, if it has one (Options.Ambient).
	RegistryCredential(host string) (username, password, source string, ok bool)
}

// FromInputs builds the Client of one tool run from its inputs and the
// environment's credential conventions.
func FromInputs(in Inputs, userAgent string, log *slog.Logger) (*Client, error) {
	opts, err := OptionsFromInputs(in, userAgent, log)
	if err != nil {
		return nil, err
	}
	return New(opts)
}

// OptionsFromInputs reads the registry inputs into Options, for a tool that
// adds to them (more insecure hosts, its own retry bound) before New.
func OptionsFromInputs(in Inputs, userAgent string, log *slog.Logger) (Options, error) {
	http1, err := in.Bool("http1")
	if err != nil {
		return Options{}, err
	}
	return Options{
		Username:     in.String("username"),
		Password:     in.String("password"),
		RegistryAuth: in.String("registry-auth"),
		Insecure:     in.List("insecure-registries"),
		HTTP1:        http1,
		UserAgent:    userAgent,
		Getenv:       in.Getenv,
		Ambient:      in.RegistryCredential,
		Log:          log,
		Mask:         in.Mask,
	}, nil
}
