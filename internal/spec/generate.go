package spec

//go:generate go run ./specgen
