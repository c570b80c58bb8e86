// Command gen writes common.txt, the list of common and breached password
// patterns embedded in package policy. It is written from patterns, not
// downloaded: the words people most often build passwords from (the checker
// strips digits and symbols around them and undoes l33t substitutions), the
// passwords that top every breach list, and keyboard walks.
//
//	go run ./internal/gen -o common.txt
package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
)

// words people build passwords from; the checker also catches them with
// digits, years and symbols around them, capitalised, or in l33t.
const words = `
password passwort passwd pass pwd secret letmein welcome admin administrator root toor login user guest
default changeme master access qwerty abc abcd abcde abcdef azerty iloveyou loveyou love lover loving
monkey dragon shadow sunshine princess football baseball basketball soccer hockey tennis golf
superman batman spiderman ironman starwars pokemon matrix ninja pirate killer hunter ranger
michael jennifer jordan michelle daniel jessica ashley charlie thomas andrew robert joshua matthew
anthony william george harley hannah amanda nicole justin taylor maggie ginger jasmine summer
buster tigger pepper cookie chocolate cheese banana orange apple cherry peanut butter coffee
flower freedom forever friends family happy hello heaven angel angels baby babygirl babe honey
sweet sweetie sweetheart lovely beautiful cutie pretty precious darling kitty kitten puppy
tiger lion bear wolf eagle falcon dolphin horse mustang ferrari porsche corvette camaro
mercedes bmw audi toyota honda yamaha harley chevy ford nissan jaguar lexus
london paris berlin madrid rome tokyo chicago boston dallas texas florida california
america canada mexico brazil russia england france germany italy spain india china
computer internet google yahoo facebook twitter microsoft windows apple samsung iphone android
server system network database oracle mysql linux ubuntu debian office email mail
summer winter spring autumn january february march april may june july august september
october november december monday tuesday wednesday thursday friday saturday sunday
red blue green yellow purple pink black white silver golden gold diamond
star stars moon sun sky ocean river mountain forest rainbow thunder lightning storm
music guitar piano rock metal jazz dance party hiphop rapper singer
god jesus christ lord angel devil hell heaven bible church faith grace blessed
money cash rich million dollar euro bitcoin crypto
secret private hidden mystery magic wizard merlin gandalf hobbit dragon warrior knight
king queen prince princess lady master slave boss chief captain soldier army navy
bigdaddy daddy mommy mother father brother sister family friend buddy bro dude
sexy hottie hotstuff fuckyou fuckoff asshole bitch whatever nothing something anything
trustno trustme believe dreams dreamer hope peace happiness smile funny crazy
test testing tester demo sample example temp temporary guest public
chelsea arsenal liverpool manchester barcelona madrid juventus milan bayern united city
yankees lakers cowboys steelers packers raiders eagles patriots giants bulls celtics
mickey minnie snoopy garfield scooby tweety bugs donald goofy simba nemo shrek elmo
naruto goku vegeta pikachu zelda mario luigi sonic halo minecraft fortnite roblox
matrix neo trinity morpheus vader yoda skywalker solo chewbacca
iloveu iloveyou2 ihateyou imissyou loveme kissme hugme fuckme
qazwsx qweasd asdzxc zaqxsw qwaszx
welcome welkom bienvenue willkommen bienvenido benvenuto
hallo hola ciao salut bonjour privet
liebe amore amor amour te quiero jetaime
fussball futbol calcio
schatz schatzi hase mausi engel
jordan23 lebron kobe messi ronaldo neymar beckham
cowboy cowgirl redneck country
shannon samantha sophie emily emma olivia ava isabella mia abigail madison chloe ella grace
lily natalie addison aubrey zoe hailey layla brooklyn lauren sarah rachel rebecca laura
melissa stephanie heather elizabeth megan amber danielle brittany katie kimberly christina
andrea victoria alexandra alexander alex max maxwell oliver jack harry charlie james john
david chris christopher brian kevin jason eric steven stephen mark paul peter richard
joseph josephine mary patricia linda barbara susan margaret dorothy lisa nancy karen betty
helen sandra donna carol ruth sharon laura angela diana julia julie sara anna maria
martin lucas luke noah liam ethan mason logan elijah aiden jayden carter jackson ryan
nathan dylan tyler brandon austin kyle zachary jacob aaron adam benjamin samuel henry
edward frank scott jeffrey gary larry dennis jerry walter patrick sean bobby johnny
tommy jimmy billy danny ricky mike mikey nick nicky tony joey bobby freddy teddy
ashley hunter taylor morgan casey jamie jesse riley cameron
bailey buddy rocky lucky molly daisy bella lucy luna sadie chloe coco oscar toby milo
jack jake duke bandit rusty shadow smokey princess prince lady sammy sasha zeus
blink182 metallica nirvana slipknot eminem beatles elvis madonna
asdf asdfg asdfgh asdfghj asdfghjk asdfghjkl zxcv zxcvb zxcvbn zxcvbnm
qwer qwert qwertz qwertzu qwertzui qwertzuiop qwerty qwertyu qwertyui qwertyuiop
`

// passwords that top every breach list as they are (checked whole, lower-cased)
const literals = `
123456 123456789 12345678 1234567890 12345 1234567 111111 000000 123123 654321 666666 121212
123321 112233 987654321 1q2w3e4r 1q2w3e4r5t 1q2w3e4r5t6y 1qaz2wsx 1qaz2wsx3edc zaq12wsx zaq1zaq1
qwe123 qwer1234 qweqwe qwerty123 qwerty1234 asd123 asdasd asdf1234 zxc123 zxcasd
abc123 abcd1234 abc12345 a1b2c3 a1b2c3d4 a123456 aa123456 aaa111 q1w2e3r4 q1w2e3r4t5 q1w2e3
1a2b3c 1a2b3c4d p4ssw0rd passw0rd p@ssw0rd p@ssword pa55word pa$$word
trustno1 letmein1 iloveyou1 monkey1 dragon1 master1 sunshine1 princess1 football1 baseball1
password1 password12 password123 password1234 admin123 admin1234 root123 test123 test1234
welcome1 welcome123 changeme1 hello123 love123 lovely1 michael1 jordan23 superman1 batman1
access14 mustang1 shadow1 killer1 hunter2 starwars1 pokemon1 qwerty1 ninja1 charlie1
1234qwer 1234abcd 123abc 123qwe 123asd 123456a 123456q 12345a 12345q 12qwaszx
7777777 8888888 99999999 88888888 77777777 55555555 11111111 22222222 33333333 44444444
12341234 11223344 1122334455 123654 147258 147258369 159753 159357 741852963 963852741
789456 789456123 456789 456123 321321 135790 246810 13579 24680 2580 0123456789
iloveyou! !qaz2wsx !qaz@wsx 1qaz@wsx !qaz1qaz qazwsxedc qazwsxedcrfv
`

func main() {
	out := flag.String("o", "common.txt", "output file")
	flag.Parse()
	set := map[string]bool{}
	add := func(s string) {
		s = strings.ToLower(strings.TrimSpace(s))
		if len(s) >= 4 {
			set[s] = true
		}
	}
	for _, w := range strings.Fields(words) {
		add(w)
	}
	for _, w := range strings.Fields(literals) {
		add(w)
	}
	// Keyboard walks: every run of 4+ keys along a row, forwards and backwards,
	// on QWERTY, QWERTZ and AZERTY, and along the columns.
	rows := []string{"1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm", "qwertzuiop", "yxcvbnm",
		"azertyuiop", "qsdfghjklm", "wxcvbn", "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
		"zaq1xsw2cde3vfr4bgt5nhy6mju7", "qazwsxedcrfvtgbyhnujmikolp", "1q2w3e4r5t6y7u8i9o0p",
		"q1w2e3r4t5y6u7i8o9p0", "a1s2d3f4g5h6j7k8l9", "1a2s3d4f5g6h7j8k9l"}
	for _, row := range rows {
		for _, r := range []string{row, reverse(row)} {
			for i := 0; i < len(r); i++ {
				for j := i + 4; j <= len(r) && j <= i+16; j++ {
					add(r[i:j])
				}
			}
		}
	}
	// Two rows walked together, e.g. "qwerasdf", "asdfzxcv", "qweasdzxc".
	letterRows := []string{"qwertyuiop", "asdfghjkl", "zxcvbnm", "1234567890"}
	for _, a := range letterRows {
		for _, b := range letterRows {
			if a == b {
				continue
			}
			for n := 3; n <= 5; n++ {
				add(a[:n] + b[:n])
			}
		}
	}
	add("qweasdzxc")
	add("qweasdzxc123")
	// Years and dates are caught by the checker's rules; pure repetitions too.
	list := make([]string, 0, len(set))
	for s := range set {
		list = append(list, s)
	}
	slices.Sort(list)
	var b strings.Builder
	b.WriteString("# Common and breached password patterns for package policy. Generated by internal/gen; do not edit.\n")
	for _, s := range list {
		b.WriteString(s)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(*out, []byte(b.String()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func reverse(s string) string {
	b := []byte(s)
	slices.Reverse(b)
	return string(b)
}
