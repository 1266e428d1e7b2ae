// envoy-check reads an Envoy bootstrap config as JSON on stdin (tests/deploy converts deploy/envoy/envoy.yaml)
// and checks it the way Envoy loads it, short of running Envoy: protojson into envoy.config.bootstrap.v3
// (unknown fields and unknown @type URLs are errors), every google.protobuf.Any unpacked into its typed
// message, and protoc-gen-validate's rules (ValidateAll) on the bootstrap and on every unpacked message.
// Prints "ok" or the errors (exit 1).
package main

import (
	"fmt"
	"io"
	"os"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

type validator interface{ ValidateAll() error }

func validate(m protoreflect.Message, path string) []error {
	var errs []error
	if v, ok := m.Interface().(validator); ok {
		if err := v.ValidateAll(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
		}
	}
	return append(errs, unpackAnys(m, path)...)
}

// unpackAnys validates the message inside every Any below m (ValidateAll stops at an Any).
func unpackAnys(m protoreflect.Message, path string) []error {
	var errs []error
	visit := func(sub protoreflect.Message, p string) {
		if a, ok := sub.Interface().(*anypb.Any); ok {
			inner, err := a.UnmarshalNew()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %s: %w", p, a.GetTypeUrl(), err))
				return
			}
			errs = append(errs, validate(inner.ProtoReflect(), p+"<"+a.GetTypeUrl()+">")...)
			return
		}
		errs = append(errs, unpackAnys(sub, p)...)
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		p := path + "." + string(fd.Name())
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				visit(l.Get(i).Message(), fmt.Sprintf("%s[%d]", p, i))
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				visit(mv.Message(), fmt.Sprintf("%s[%v]", p, k.Interface()))
				return true
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			visit(v.Message(), p)
		}
		return true
	})
	return errs
}

func main() {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "read:", err)
		os.Exit(2)
	}
	var b bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(data, &b); err != nil {
		fmt.Fprintln(os.Stderr, "not an Envoy v3 bootstrap:", err)
		os.Exit(1)
	}
	if errs := validate(b.ProtoReflect(), "bootstrap"); len(errs) > 0 {
		for _, e := range errs {
			fmt.Fprintln(os.Stderr, e)
		}
		os.Exit(1)
	}
	fmt.Println("ok")
}
