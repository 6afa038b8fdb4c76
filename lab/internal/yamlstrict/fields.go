package yamlstrict

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
)

// field is one key a struct accepts.
type field struct {
	key   string
	index int // of the struct field
	opts  tagOptions
}

// tagOptions is how one value is decoded, beyond its Go type.
type tagOptions struct {
	entry   string   // what the entries of a map are called ("label")
	without []string // keys of a struct not accepted here
	value   string   // set for a map's values: what its entries are called
}

var structFields sync.Map // reflect.Type -> []field

// fieldsOf returns the keys struct type t accepts, in field order, less
// those in without.
func fieldsOf(t reflect.Type, without []string) []field {
	all, ok := structFields.Load(t)
	if !ok {
		all, _ = structFields.LoadOrStore(t, parseFields(t))
	}
	fields := all.([]field)
	if len(without) == 0 {
		return fields
	}
	return slices.DeleteFunc(slices.Clone(fields), func(f field) bool { return slices.Contains(without, f.key) })
}

// parseFields reads t's yaml and yamlstrict tags; one it cannot honour
// is a programming error, found by the first test that decodes t.
func parseFields(t reflect.Type) []field {
	var fields []field
	for i := range t.NumField() {
		sf := t.Field(i)
		if key, ok := keyOf(t, sf); ok {
			fields = append(fields, field{key: key, index: i, opts: parseOptions(t, sf)})
		}
	}
	return fields
}

// keyOf returns the key of struct field sf, if it has one.
func keyOf(t reflect.Type, sf reflect.StructField) (string, bool) {
	if !sf.IsExported() {
		return "", false
	}
	name, flags, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
	if name == "-" {
		return "", false
	}
	if slices.Contains(strings.Split(flags, ","), "inline") {
		panic(fmt.Sprintf("yamlstrict: %s.%s: inline fields are not supported", t, sf.Name))
	}
	if name == "" {
		name = strings.ToLower(sf.Name)
	}
	return name, true
}

func parseOptions(t reflect.Type, sf reflect.StructField) tagOptions {
	var opts tagOptions
	tag, ok := sf.Tag.Lookup("yamlstrict")
	if !ok {
		return opts
	}
	bad := func(format string, args ...any) {
		panic(fmt.Sprintf("yamlstrict: %s.%s: ", t, sf.Name) + fmt.Sprintf(format, args...))
	}
	for opt := range strings.SplitSeq(tag, ",") {
		key, value, _ := strings.Cut(opt, "=")
		switch key {
		case "entry":
			if sf.Type.Kind() != reflect.Map || value == "" {
				bad("entry=NAME is for map fields")
			}
			opts.entry = value
		case "without":
			target := sf.Type
			if target.Kind() == reflect.Pointer {
				target = target.Elem()
			}
			if target.Kind() != reflect.Struct {
				bad("without= is for struct fields")
			}
			for key := range strings.FieldsSeq(value) {
				if !hasKey(target, key) {
					bad("without=%s: %s has no such field", key, target)
				}
				opts.without = append(opts.without, key)
			}
		default:
			bad("unknown option %q", opt)
		}
	}
	return opts
}

func hasKey(t reflect.Type, key string) bool {
	for i := range t.NumField() {
		if k, ok := keyOf(t, t.Field(i)); ok && k == key {
			return true
		}
	}
	return false
}

func lookup(fields []field, key string) (field, bool) {
	i := slices.IndexFunc(fields, func(f field) bool { return f.key == key })
	if i < 0 {
		return field{}, false
	}
	return fields[i], true
}

func keys(fields []field) string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.key
	}
	return strings.Join(names, ", ")
}

// suggest returns ` (did you mean "role"?)` for a near-miss such as "rol".
func suggest(key string, fields []field) string {
	for _, f := range fields {
		// One edit for short keys, two for longer ones, so "id" is not taken for "kind".
		limit := 1
		if len(f.key) > 4 {
			limit = 2
		}
		if distance(strings.ToLower(key), strings.ToLower(f.key)) <= limit {
			return fmt.Sprintf(" (did you mean %q?)", f.key)
		}
	}
	return ""
}

// distance is the Levenshtein edit distance between a and b.
func distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return max(len(a), len(b)) // not a typo; don't spend time on it
	}
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
