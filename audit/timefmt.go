package audit

import "time"

// parseCanonicalTime parses a record's time: RFC 3339 in UTC exactly as
// time.RFC3339Nano formats it, YYYY-MM-DDTHH:MM:SS[.fraction]Z with a
// fraction of 1 to 9 digits and no trailing zero. Anything else (another
// zone, a trailing zero, an out-of-range field) is refused. It is the same
// rule as time.Parse plus re-formatting, without the allocations;
// FuzzParseCanonicalTime holds the two together.
func parseCanonicalTime(b []byte) (time.Time, bool) {
	const fixed = len("2006-01-02T15:04:05")
	if len(b) < fixed+1 || b[len(b)-1] != 'Z' {
		return time.Time{}, false
	}
	if b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	num := func(p []byte) int {
		n := 0
		for _, c := range p {
			if c < '0' || c > '9' {
				return -1
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	year, month, day := num(b[0:4]), num(b[5:7]), num(b[8:10])
	hour, minute, sec := num(b[11:13]), num(b[14:16]), num(b[17:19])
	if year < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 59 {
		return time.Time{}, false
	}
	if day > daysIn(time.Month(month), year) {
		return time.Time{}, false
	}
	nsec := 0
	if frac := b[fixed : len(b)-1]; len(frac) > 0 {
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 || frac[len(frac)-1] == '0' {
			return time.Time{}, false
		}
		nsec = num(frac[1:])
		if nsec < 0 {
			return time.Time{}, false
		}
		for range 10 - len(frac) {
			nsec *= 10
		}
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC), true
}

func daysIn(m time.Month, year int) int {
	if m == time.February {
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	}
	return 31 - int((m-1)%7%2)
}
