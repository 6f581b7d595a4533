// Command validate checks Kubernetes manifests (the output of `helm template`) against the
// Kubernetes API's Go types: every document must be a known kind whose every field exists
// in that kind's struct, spelled exactly (no unknown, duplicate or mis-cased fields), with
// values of the right type (quantities, int-or-strings, enums as strings).
//
//	validate [--allow-kind group/version/Kind ...] FILE...   (or - for stdin)
//
// Exit 0: every object is valid; 1: at least one is not (one line each, naming the
// object, its template and the field); 2: usage or unreadable input.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// maxProblems bounds the problems reported for one object.
const maxProblems = 20

var (
	documentSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)
	sourceComment     = regexp.MustCompile(`(?m)^# Source: (.+)$`)
)

type allowedKinds []string

func (a *allowedKinds) String() string { return strings.Join(*a, ",") }
func (a *allowedKinds) Set(v string) error {
	*a = append(*a, v)
	return nil
}

func newScheme() (*runtime.Scheme, error) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme,
		policyv1.AddToScheme, autoscalingv2.AddToScheme, networkingv1.AddToScheme,
		rbacv1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	return scheme, nil
}

// check validates one YAML document; it returns the problems found, each naming the field.
func check(scheme *runtime.Scheme, document []byte, allowed map[string]bool) (string, []string) {
	data, err := yaml.YAMLToJSONStrict(document)
	if err != nil {
		return "", []string{fmt.Sprintf("not valid YAML: %v", err)}
	}
	if string(bytes.TrimSpace(data)) == "null" {
		return "", nil // an empty document (a template that rendered nothing)
	}
	var head struct {
		metav1.TypeMeta `json:",inline"`
		Metadata        struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(data, &head); err != nil {
		return "", []string{fmt.Sprintf("no apiVersion/kind/metadata: %v", err)}
	}
	gvk := schema.FromAPIVersionAndKind(head.APIVersion, head.Kind)
	name := fmt.Sprintf("%s %s/%s", head.APIVersion, head.Kind, head.Metadata.Name)
	if head.APIVersion == "" || head.Kind == "" {
		return name, []string{"apiVersion and kind are required"}
	}
	if head.Metadata.Name == "" {
		return name, []string{"metadata.name is required"}
	}
	if allowed[gvk.GroupVersion().String()+"/"+gvk.Kind] {
		return name, nil
	}
	object, err := scheme.New(gvk)
	if err != nil {
		return name, []string{fmt.Sprintf("unknown kind %s (not in the Kubernetes API models this validator knows)", gvk)}
	}
	problems := []string{}
	// A value its type refuses (a quantity, a number for a string) stops the decoding, and
	// encoding/json does not say where: find the smallest part of the object that still
	// fails, report it, drop it, and decode again for the next problem.
	for attempt := 0; attempt < maxProblems; attempt++ {
		strict, err := sigsjson.UnmarshalStrict(data, object,
			sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
		if err == nil {
			for _, e := range strict {
				problems = append(problems, e.Error())
			}
			break
		}
		path, without := locate(scheme, gvk, data)
		problems = append(problems, fmt.Sprintf("%s: %v", formatPath(path), err))
		if without == nil {
			break
		}
		data = without
		object, _ = scheme.New(gvk)
	}
	sort.Strings(problems)
	return name, problems
}

// decodes reports whether data, as an object of kind gvk, decodes without error.
func decodes(scheme *runtime.Scheme, gvk schema.GroupVersionKind, tree any) bool {
	data, err := json.Marshal(tree)
	if err != nil {
		return false
	}
	object, err := scheme.New(gvk)
	if err != nil {
		return false
	}
	return sigsjson.UnmarshalCaseSensitivePreserveInts(data, object) == nil
}

// locate returns the path of the deepest field whose value alone makes the object fail to
// decode (e.g. spec.template.spec.containers[0].resources.limits.memory), and the object
// without that value (nil when it is the whole object): at each level it keeps one child
// at a time, since every field of the API types may be left out.
func locate(scheme *runtime.Scheme, gvk schema.GroupVersionKind, data []byte) ([]any, []byte) {
	var root any
	if err := json.Unmarshal(data, &root); err != nil {
		return nil, nil
	}
	typeMeta := map[string]any{"apiVersion": gvk.GroupVersion().String(), "kind": gvk.Kind}
	// rebuild wraps a value kept at the current path back into a whole object.
	rebuild := func(value any) any { return value }
	path := []any{}
	current := root
	var parent any
	for {
		var next any
		found := false
		switch node := current.(type) {
		case map[string]any:
			keys := make([]string, 0, len(node))
			for key := range node {
				keys = append(keys, key)
			}
			sort.Strings(keys)
			for _, key := range keys {
				outer, atRoot := rebuild, len(path) == 0
				wrap := func(value any) any {
					only := map[string]any{key: value}
					if atRoot {
						for k, v := range typeMeta {
							only[k] = v
						}
					}
					return outer(only)
				}
				if !decodes(scheme, gvk, wrap(node[key])) {
					rebuild, next, found = wrap, node[key], true
					path = append(path, key)
					break
				}
			}
		case []any:
			for index, element := range node {
				outer := rebuild
				wrap := func(value any) any { return outer([]any{value}) }
				if !decodes(scheme, gvk, wrap(element)) {
					rebuild, next, found = wrap, element, true
					path = append(path, index)
					break
				}
			}
		}
		if !found {
			break
		}
		parent, current = current, next
	}
	if len(path) == 0 {
		return path, nil
	}
	switch container := parent.(type) {
	case map[string]any:
		delete(container, path[len(path)-1].(string))
	case []any:
		container[path[len(path)-1].(int)] = nil
	}
	without, err := json.Marshal(root)
	if err != nil {
		return path, nil
	}
	return path, without
}

// formatPath writes a path as spec.containers[0].name.
func formatPath(path []any) string {
	if len(path) == 0 {
		return "(the object)"
	}
	var out strings.Builder
	for _, step := range path {
		switch s := step.(type) {
		case int:
			fmt.Fprintf(&out, "[%d]", s)
		default:
			if out.Len() > 0 {
				out.WriteString(".")
			}
			fmt.Fprintf(&out, "%v", s)
		}
	}
	return out.String()
}

func read(path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(path)
}

func main() {
	var allowed allowedKinds
	flag.Var(&allowed, "allow-kind", "group/version/Kind accepted without a check (CRDs), repeatable")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: validate [--allow-kind group/version/Kind ...] FILE... (- for stdin)")
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	allowedSet := map[string]bool{}
	for _, kind := range allowed {
		allowedSet[kind] = true
	}
	scheme, err := newScheme()
	if err != nil {
		fmt.Fprintf(os.Stderr, "validate: %v\n", err)
		os.Exit(2)
	}
	failed, objects := 0, 0
	for _, path := range flag.Args() {
		content, err := read(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "validate: %v\n", err)
			os.Exit(2)
		}
		for index, document := range documentSeparator.Split(string(content), -1) {
			source := fmt.Sprintf("%s#%d", path, index)
			if found := sourceComment.FindStringSubmatch(document); found != nil {
				source = found[1]
			}
			name, problems := check(scheme, []byte(document), allowedSet)
			if name != "" {
				objects++
			}
			for _, problem := range problems {
				fmt.Printf("%s (%s): %s\n", name, source, problem)
			}
			if len(problems) > 0 {
				failed++
			}
		}
	}
	if failed > 0 {
		fmt.Printf("%d of %d objects invalid\n", failed, objects)
		os.Exit(1)
	}
	fmt.Printf("%d objects valid\n", objects)
}
