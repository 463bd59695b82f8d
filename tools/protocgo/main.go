// Command protocgo is a stand-in for protoc written in Go, for machines
// without protoc: it compiles .proto files with bufbuild/protocompile, hands
// the descriptors to protoc plugins as protoc does (a CodeGeneratorRequest on
// standard input) and writes the files they return. It exists so that the
// generated-code check of `make test` runs with nothing but Go installed;
// scripts/protogen.sh prefers a real protoc when there is one.
//
// Usage: protocgo -I DIR --plugin NAME=PATH:OUT[:PARAM] ... FILE.proto ...
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/bufbuild/protocompile"
	"github.com/bufbuild/protocompile/linker"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"
)

// compilerVersion is the protoc version the generated files name: the
// version scripts/protogen.sh pins, so both produce the same bytes.
var compilerVersion = &pluginpb.Version{Major: proto.Int32(3), Minor: proto.Int32(21), Patch: proto.Int32(12), Suffix: proto.String("")}

type pluginFlag []string

func (p *pluginFlag) String() string     { return strings.Join(*p, ",") }
func (p *pluginFlag) Set(v string) error { *p = append(*p, v); return nil }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "protocgo:", err)
		os.Exit(1)
	}
}

func run() error {
	var importPath string
	var plugins pluginFlag
	flag.StringVar(&importPath, "I", ".", "import directory")
	flag.Var(&plugins, "plugin", "NAME=PATH:OUTDIR[:PARAMETER], repeatable")
	flag.Parse()
	files := flag.Args()
	if len(files) == 0 || len(plugins) == 0 {
		return errors.New("usage: protocgo -I DIR --plugin NAME=PATH:OUT[:PARAM] FILE.proto ...")
	}
	comp := protocompile.Compiler{
		Resolver:       protocompile.WithStandardImports(&protocompile.SourceResolver{ImportPaths: []string{importPath}}),
		SourceInfoMode: protocompile.SourceInfoStandard,
	}
	compiled, err := comp.Compile(context.Background(), files...)
	if err != nil {
		return err
	}
	req := &pluginpb.CodeGeneratorRequest{FileToGenerate: files, CompilerVersion: compilerVersion}
	seen := map[string]bool{}
	var add func(fd protoreflect.FileDescriptor)
	add = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		imports := fd.Imports()
		for i := range imports.Len() {
			add(imports.Get(i).FileDescriptor)
		}
		req.ProtoFile = append(req.ProtoFile, toProto(fd))
	}
	for _, f := range compiled {
		add(f.(linker.File))
	}
	for _, p := range plugins {
		name, spec, ok := strings.Cut(p, "=")
		parts := strings.SplitN(spec, ":", 3)
		if !ok || len(parts) < 2 {
			return fmt.Errorf("--plugin %q: want NAME=PATH:OUTDIR[:PARAMETER]", p)
		}
		r := proto.Clone(req).(*pluginpb.CodeGeneratorRequest)
		if len(parts) == 3 {
			r.Parameter = proto.String(parts[2])
		}
		if err := runPlugin(name, parts[0], parts[1], r); err != nil {
			return err
		}
	}
	return nil
}

// toProto is the FileDescriptorProto protoc would send: with source code
// info for the files to generate and json_name on every field.
func toProto(fd protoreflect.FileDescriptor) *descriptorpb.FileDescriptorProto {
	if r, ok := fd.(linker.Result); ok {
		return r.FileDescriptorProto()
	}
	return protodesc.ToFileDescriptorProto(fd)
}

func runPlugin(name, path, outDir string, req *pluginpb.CodeGeneratorRequest) error {
	in, err := proto.Marshal(req)
	if err != nil {
		return err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(path)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(in), &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("plugin %s: %v: %s", name, err, stderr.String())
	}
	var resp pluginpb.CodeGeneratorResponse
	if err := proto.Unmarshal(stdout.Bytes(), &resp); err != nil {
		return fmt.Errorf("plugin %s: %v", name, err)
	}
	if resp.Error != nil {
		return fmt.Errorf("plugin %s: %s", name, resp.GetError())
	}
	for _, f := range resp.File {
		p := filepath.Join(outDir, f.GetName())
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(f.GetContent()), 0o644); err != nil {
			return err
		}
	}
	return nil
}
