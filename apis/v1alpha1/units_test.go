package v1alpha1

import (
	"testing"

	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestParseCPU(t *testing.T) {
	cases := []struct {
		in      intstr.IntOrString
		want    int64
		wantErr bool
	}{
		{in: intstr.FromInt32(1024), want: 1024},
		{in: intstr.FromString("256"), want: 256},
		{in: intstr.FromString("1 vCPU"), want: 1024},
		{in: intstr.FromString("0.25 vcpu"), want: 256},
		{in: intstr.FromString(".5vCPU"), want: 512},
		{in: intstr.FromString(" 2 VCPU "), want: 2048},
		{in: intstr.FromString("192 vCPU"), want: 196608},
		{in: intstr.FromInt32(127), wantErr: true},
		{in: intstr.FromString("200 vCPU"), wantErr: true},
		{in: intstr.FromString("two cores"), wantErr: true},
		{in: intstr.FromString("1 GB"), wantErr: true},
		{in: intstr.FromString(""), wantErr: true},
	}
	for _, tc := range cases {
		got, err := ParseCPU(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseCPU(%s) = %d, %v; want %d, error %v", tc.in.String(), got, err, tc.want, tc.wantErr)
		}
	}
}

func TestParseMemory(t *testing.T) {
	cases := []struct {
		in      intstr.IntOrString
		want    int64
		wantErr bool
	}{
		{in: intstr.FromInt32(512), want: 512},
		{in: intstr.FromString("512"), want: 512},
		{in: intstr.FromString("2 GB"), want: 2048},
		{in: intstr.FromString("0.5GB"), want: 512},
		{in: intstr.FromString("1 gb"), want: 1024},
		{in: intstr.FromString("3GiB"), want: 3072},
		{in: intstr.FromString("700 MiB"), want: 700},
		{in: intstr.FromString("700MB"), want: 700},
		{in: intstr.FromInt32(5), wantErr: true},
		{in: intstr.FromString("0.001 GB"), wantErr: true},
		{in: intstr.FromString("2 TB"), wantErr: true},
		{in: intstr.FromString("lots"), wantErr: true},
	}
	for _, tc := range cases {
		got, err := ParseMemory(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseMemory(%s) = %d, %v; want %d, error %v", tc.in.String(), got, err, tc.want, tc.wantErr)
		}
	}
}
