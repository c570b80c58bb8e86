package config

import (
	"reflect"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Flags binds one command-line flag to every scalar configuration key. The
// flag's name is the key's YAML path with '_' written as '-'
// (tokens.access_token_lifetime → --tokens.access-token-lifetime).
type Flags struct {
	scratch *Config
	fs      *pflag.FlagSet
	fields  map[string][]int // flag name → field index path
}

var durationType = reflect.TypeOf(time.Duration(0))

// BindFlags registers the flags on fs, with defaults from def.
func BindFlags(fs *pflag.FlagSet, def Config) *Flags {
	f := &Flags{scratch: &def, fs: fs, fields: map[string][]int{}}
	f.bind(reflect.ValueOf(f.scratch).Elem(), "", nil)
	return f
}

func (f *Flags) bind(v reflect.Value, prefix string, index []int) {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		key, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if key == "" || key == "-" {
			continue
		}
		name := prefix + strings.ReplaceAll(key, "_", "-")
		path := append(append([]int(nil), index...), i)
		fv := v.Field(i)
		help := sf.Tag.Get("help")
		switch {
		case sf.Type == durationType:
			f.fs.DurationVar(fv.Addr().Interface().(*time.Duration), name, fv.Interface().(time.Duration), help)
		case sf.Type.Kind() == reflect.String:
			f.fs.StringVar(fv.Addr().Interface().(*string), name, fv.String(), help)
		case sf.Type.Kind() == reflect.Bool:
			f.fs.BoolVar(fv.Addr().Interface().(*bool), name, fv.Bool(), help)
		case sf.Type.Kind() == reflect.Int:
			f.fs.IntVar(fv.Addr().Interface().(*int), name, int(fv.Int()), help)
		case sf.Type.Kind() == reflect.Struct:
			f.bind(fv, name+".", path)
			continue
		default:
			continue // lists and maps live in the file only
		}
		f.fields[name] = path
	}
}

// Apply copies every flag the user set onto cfg, so flags win over the file.
func (f *Flags) Apply(cfg *Config) {
	dst := reflect.ValueOf(cfg).Elem()
	src := reflect.ValueOf(f.scratch).Elem()
	for name, path := range f.fields {
		if fl := f.fs.Lookup(name); fl != nil && fl.Changed {
			dst.FieldByIndex(path).Set(src.FieldByIndex(path))
		}
	}
}
