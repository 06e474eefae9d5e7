package store

import (
	"strconv"
	"strings"
	"time"
)

// Stream, bucket, consumer and subject names.
const (
	JournalStream   = "MYRIAD_JOURNAL"
	InputStream     = "MYRIAD_INPUT"
	QueueStream     = "MYRIAD_QUEUE"
	ScheduleStream  = "MYRIAD_SCHEDULES"
	RunsBucket      = "myriad_runs"
	InstancesBucket = "myriad_instances"
	BudgetsBucket   = "myriad_budgets"

	journalPrefix   = "myriad.journal."
	inputPrefix     = "myriad.input."
	idemPrefix      = "myriad.idem."
	queuePrefix     = "myriad.queue."
	pokePrefix      = "myriad.poke."
	livePrefix      = "myriad.live."
	schedulePrefix  = "myriad.sched."
	firedPrefix     = "myriad.fired."
	workersConsumer = "workers"
	routerConsumer  = "router"
	firedConsumer   = "fired"
)

// TreeLen is how many characters after "run_" name a run's tree: a root
// run's creation time and a counter; child run ids begin with their
// parent's tree, so a tree's journals read in order through one filter.
const TreeLen = 20

// Tree returns the tree token of an entity id. Ids that do not have the
// run shape (instances, tests' short ids) are their own tree.
func Tree(id string) string {
	if len(id) >= 4+TreeLen && strings.HasPrefix(id, "run_") {
		return id[4 : 4+TreeLen]
	}
	return id
}

func journalSubject(id string) string { return journalPrefix + Tree(id) + "." + id }
func treeJournals(tree string) string { return journalPrefix + tree + ".*" }
func inputSubject(id string) string   { return inputPrefix + Tree(id) + "." + id }
func queueSubject(id string) string   { return queuePrefix + id }
func pokeSubject(id string) string    { return pokePrefix + id }
func liveSubject(id string) string    { return livePrefix + Tree(id) + "." + id }
func treeLive(tree string) string     { return livePrefix + tree + ".*" }

// entityOf is the last token of an entity's subject.
func entityOf(subject string) string { return subject[strings.LastIndexByte(subject, '.')+1:] }

func timerSubject(id string, t time.Time) string {
	return schedulePrefix + "timer." + id + "." + strconv.FormatInt(t.Unix(), 10)
}
func timerTarget(id string) string   { return firedPrefix + "timer." + id }
func cronSubject(name string) string { return schedulePrefix + "cron." + name }
func cronTarget(name string) string  { return firedPrefix + "cron." + name }
