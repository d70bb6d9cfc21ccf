package v1alpha1

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/intstr"
)

// Task-level cpu and memory are written as ECS writes them: numbers, numeric strings
// or strings with units ("1 vCPU", "2 GB"). These functions are the one place that
// turns them into CPU units and MiB; the CRD's CEL rules accept the same grammar.

var (
	cpuForm    = regexp.MustCompile(`^\s*([0-9]+|[0-9]*[.][0-9]+)\s*([vV][cC][pP][uU])?\s*$`)
	memoryForm = regexp.MustCompile(`^\s*([0-9]+|[0-9]*[.][0-9]+)\s*([gG][bB]|[gG][iI][bB]|[mM][bB]|[mM][iI][bB])?\s*$`)
)

// CPU and memory bounds of a task, as the CRD enforces them.
const (
	MinTaskCPU    = 128
	MaxTaskCPU    = 196608
	MinTaskMemory = 6
	MaxTaskMemory = 4194304
)

// ParseCPU returns CPU units (1024 per vCPU) for an ECS task cpu value: 1024, "1024",
// "1 vCPU", "0.25 vcpu". Fractions of a unit round to the nearest unit.
func ParseCPU(v intstr.IntOrString) (int64, error) {
	return parseQuantity(v, cpuForm, func(unit string) float64 {
		if unit != "" {
			return 1024
		}
		return 1
	}, MinTaskCPU, MaxTaskCPU, `CPU units (1024 or "1024") or vCPUs ("1 vCPU", "0.5 vcpu")`)
}

// ParseMemory returns MiB for an ECS task memory value: 512, "512", "2 GB", "0.5GB"
// (ECS's GB is 1024 MiB; GiB, MB and MiB are accepted too).
func ParseMemory(v intstr.IntOrString) (int64, error) {
	return parseQuantity(v, memoryForm, func(unit string) float64 {
		if strings.HasPrefix(strings.ToLower(unit), "g") {
			return 1024
		}
		return 1
	}, MinTaskMemory, MaxTaskMemory, `MiB (512 or "512") or GB ("2 GB", "0.5GB")`)
}

func parseQuantity(v intstr.IntOrString, form *regexp.Regexp, scale func(unit string) float64, lo, hi int64, want string) (int64, error) {
	var n int64
	if v.Type == intstr.Int {
		n = int64(v.IntVal)
	} else {
		m := form.FindStringSubmatch(v.StrVal)
		if m == nil {
			return 0, fmt.Errorf("%q is not %s", v.StrVal, want)
		}
		f, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not %s", v.StrVal, want)
		}
		n = int64(math.Round(f * scale(m[2])))
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%s is out of range %d-%d", v.String(), lo, hi)
	}
	return n, nil
}

// CPUUnits is the task's cpu in CPU units; ok is false when the task sets none. The
// CRD has validated the value, so an error here means a stored object from before a
// rule changed: callers treat it as "not set".
func (s *TaskDefinitionSpec) CPUUnits() (units int64, ok bool) {
	if s.Cpu == nil {
		return 0, false
	}
	n, err := ParseCPU(*s.Cpu)
	return n, err == nil
}

// MemoryMiB is the task's memory in MiB; ok is false when the task sets none.
func (s *TaskDefinitionSpec) MemoryMiB() (mib int64, ok bool) {
	if s.Memory == nil {
		return 0, false
	}
	n, err := ParseMemory(*s.Memory)
	return n, err == nil
}
