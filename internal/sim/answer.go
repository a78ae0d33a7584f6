package sim

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// DefaultTokens is the answer length used when a profile's Tokens is zero.
const DefaultTokens = 24

// Answer returns the canonical answer to prompt as tokens: words from a
// fixed vocabulary picked by a hash of the prompt's words. Every token is a
// word followed by a space, except the last, which ends in "." instead; the
// first word is capitalized. No other token contains a ".", so an answer cut
// short is always detectable by comparing it with Answer. If tokens <= 0,
// DefaultTokens is used.
//
// The answer depends only on the prompt's words, not on the model or on
// whitespace, so two simulated models give the same answer to the same
// messages. Answer(p, n) and Answer(p, m) share the same words: only the
// last token's punctuation and the first token's capital differ.
func Answer(prompt string, tokens int) []string {
	if tokens <= 0 {
		tokens = DefaultTokens
	}
	h, _ := digest(prompt)
	out := make([]string, tokens)
	for i := range out {
		out[i] = answerToken(h, i, tokens)
	}
	return out
}

// PromptOf returns the prompt text the simulator answers, given the text of
// every message of a request in order (system, user, assistant and tool
// messages alike; a message whose content is a list of parts contributes its
// text parts joined by "\n"; a message without text contributes ""). Tests
// use it to compute the expected answer: Answer(PromptOf(texts...), n).
func PromptOf(messages ...string) string {
	return strings.Join(messages, "\n")
}

// digester hashes the words of a prompt (FNV-1a over whitespace-separated
// words, so spacing and line breaks do not matter) and counts them. It does
// not allocate: the zero-latency benchmark path runs it on every request.
// Feed it message by message, calling brk between messages, to get the same
// digest as for the PromptOf of those messages.
type digester struct {
	h      uint64
	words  int
	inWord bool
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func newDigester() digester { return digester{h: fnvOffset} }

// brk ends the current word, as the line break PromptOf puts between
// messages does.
func (d *digester) brk() { d.inWord = false }

func (d *digester) write(s string) {
	for i := 0; i < len(s); {
		c := s[i]
		size := 1
		var space bool
		if c < utf8.RuneSelf {
			space = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
		} else {
			var r rune
			r, size = utf8.DecodeRuneInString(s[i:])
			space = unicode.IsSpace(r)
		}
		if space {
			d.inWord = false
			i += size
			continue
		}
		if !d.inWord {
			if d.words > 0 {
				d.h = (d.h ^ ' ') * fnvPrime
			}
			d.words++
			d.inWord = true
		}
		for j := i; j < i+size; j++ {
			d.h = (d.h ^ uint64(s[j])) * fnvPrime
		}
		i += size
	}
}

// digest returns the word hash and word count of prompt.
func digest(prompt string) (h uint64, words int) {
	d := newDigester()
	d.write(prompt)
	return d.h, d.words
}

// mix is SplitMix64's finalizer: a cheap, well-spread hash of x.
func mix(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
	x = (x ^ (x >> 27)) * 0x94D049BB133111EB
	return x ^ (x >> 31)
}

// hashString is FNV-1a of s, for seeds and ids.
func hashString(h uint64, s string) uint64 {
	if h == 0 {
		h = fnvOffset
	}
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * fnvPrime
	}
	return h
}

// wordIndex picks the vocabulary index of word i of the answer to a prompt
// with digest h.
func wordIndex(h uint64, i int) int {
	return int(mix(h^uint64(i)*0xD6E8FEB86659FD93) % uint64(len(vocab)))
}

// answerToken is token i of an n-token answer; it returns a string from the
// precomputed tables, so it does not allocate.
func answerToken(h uint64, i, n int) string {
	w := wordIndex(h, i)
	switch {
	case n == 1:
		return tokenTable.only[w]
	case i == 0:
		return tokenTable.first[w]
	case i == n-1:
		return tokenTable.last[w]
	default:
		return tokenTable.mid[w]
	}
}

// tokens holds every vocabulary word in the four shapes a token can take.
type tokens struct {
	mid, first, last, only [len(vocab)]string
}

// tokenTable is computed once at init and never written again.
var tokenTable = func() *tokens {
	t := new(tokens)
	for i, w := range vocab {
		cw := strings.ToUpper(w[:1]) + w[1:]
		t.mid[i] = w + " "
		t.first[i] = cw + " "
		t.last[i] = w + "."
		t.only[i] = cw + "."
	}
	return t
}()

// word returns a vocabulary word chosen by h, for generated JSON values.
func word(h uint64) string {
	return vocab[mix(h)%uint64(len(vocab))]
}

// vocab is the answer vocabulary: plain lowercase ASCII words, so tokens
// never need JSON escaping and never contain ".".
var vocab = [...]string{
	"amber", "anchor", "apple", "arch", "arrow", "aspen", "atlas", "autumn",
	"badge", "baker", "bamboo", "banner", "barley", "basin", "beacon", "berry",
	"birch", "bison", "blossom", "bold", "border", "breeze", "brick", "bright",
	"brook", "bronze", "cabin", "cactus", "canal", "candle", "canyon", "carbon",
	"cedar", "cellar", "chalk", "cherry", "cider", "circle", "citrus", "clay",
	"cliff", "cloud", "clover", "coast", "cobalt", "comet", "copper", "coral",
	"cotton", "crane", "creek", "crystal", "dawn", "delta", "desert", "dew",
	"dune", "eagle", "echo", "ember", "falcon", "fern", "field", "flint",
	"forest", "fountain", "fox", "frost", "garden", "garnet", "glacier", "glade",
	"granite", "grove", "harbor", "harvest", "hazel", "heron", "hill", "honey",
	"horizon", "island", "ivory", "jade", "jasmine", "juniper", "kettle", "lagoon",
	"lantern", "lark", "laurel", "lemon", "lilac", "linen", "lotus", "maple",
	"marble", "meadow", "mesa", "mint", "mist", "moss", "mountain", "myrtle",
	"nectar", "north", "oak", "oasis", "ocean", "olive", "onyx", "orchard",
	"otter", "owl", "paper", "pebble", "pepper", "pine", "plain", "plum",
	"pond", "poppy", "prairie", "quartz", "quiet", "rain", "raven", "reed",
	"ridge", "river", "robin", "rose", "ruby", "saffron", "sage", "salt",
	"sand", "sapphire", "shadow", "shell", "silver", "sky", "slate", "snow",
	"sparrow", "spring", "spruce", "star", "stone", "storm", "stream", "summer",
	"sun", "swift", "thistle", "thunder", "tide", "timber", "topaz", "trail",
	"tulip", "valley", "velvet", "violet", "walnut", "wave", "willow", "wind",
	"winter", "wren", "yarrow", "zephyr", "acorn", "alder", "alpine", "aurora",
	"bay", "bell", "bluff", "bramble", "cairn", "cape", "cove", "crest",
	"dale", "drift", "elm", "estuary", "fjord", "glen", "gorge", "gulf",
	"heath", "hollow", "inlet", "isle", "kelp", "knoll", "lake", "ledge",
	"loch", "marsh", "moor", "nook", "peak", "pier", "pool", "rapids",
	"reef", "rill", "rock", "shoal", "shore", "slope", "sound", "spire",
	"summit", "swamp", "tarn", "thicket", "tor", "tundra", "vale", "vista",
	"warm", "gentle", "calm", "clear", "golden", "green", "blue", "red",
	"white", "soft", "still", "deep", "wide", "tall", "old", "new",
	"early", "late", "slow", "quick", "light", "dark", "open", "near",
	"far", "high", "low", "round", "sweet", "fresh", "kind", "brave",
}
