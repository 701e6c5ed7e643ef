/* A cache of weak pointers (docs/gc.md, "Weak pointers"): decoded images
 * by name, held by the cache only weakly. Whoever uses an image keeps it
 * alive; once nobody does, the collector frees it, the cache's weak pointer
 * reads NULL, and a cleanup attached to the image drops the cache's entry.
 * So the cache never keeps anything alive by itself, never hands out a
 * freed image, and does not grow with the images that came and went.
 *
 * Run: build/examples/weak_cache (exit status 0 when every check held). */
#include <gort.h>

#include <stdio.h>
#include <string.h>

struct image {
    char name[32];
    size_t size;
    unsigned char *pixels; /* gort_alloc_noscan: never scanned */
};
GORT_TYPE(image, pixels);

/* An entry holds the name and a weak pointer: nothing that reaches the
 * image, so it can be the image's cleanup argument. */
struct entry {
    struct entry *next;
    gort_weak *w;
    char name[32];
};
GORT_TYPE(entry, next, w);

#define NBUCKETS 64
static struct entry *buckets[NBUCKETS]; /* a global: a root */
static gort_mutex mu = GORT_MUTEX_INIT;
static long loads, hits, dropped, nentries;

static unsigned hash(const char *s) {
    unsigned h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h % NBUCKETS;
}

/* The expensive part a cache saves. */
static struct image *load(const char *name) {
    struct image *img = gort_new(&image_type);
    snprintf(img->name, sizeof img->name, "%s", name);
    img->size = 64 * 1024;
    GORT_STORE(img->pixels, gort_alloc_noscan(img->size));
    memset(img->pixels, (int)hash(name), img->size);
    loads++;
    return img;
}

/* The cleanup of an image: its entry goes, unless a newer image of the same
 * name took it over meanwhile (then the entry's weak pointer is alive). */
static void drop_entry(void *arg) {
    struct entry *e = arg;
    gort_mutex_lock(&mu);
    if (gort_weak_get(e->w) == NULL) {
        for (struct entry **pp = &buckets[hash(e->name)]; *pp; pp = &(*pp)->next) {
            if (*pp == e) {
                GORT_STORE(*pp, e->next);
                dropped++;
                nentries--;
                break;
            }
        }
    }
    gort_mutex_unlock(&mu);
}

struct image *cache_get(const char *name) {
    gort_mutex_lock(&mu);
    struct entry *e = buckets[hash(name)];
    for (; e && strcmp(e->name, name) != 0; e = e->next) {
    }
    struct image *img = e ? gort_weak_get(e->w) : NULL; /* NULL once collected */
    if (img) hits++;
    gort_mutex_unlock(&mu);
    if (img) return img;

    img = load(name); /* outside the lock: slow */
    gort_mutex_lock(&mu);
    if (!e) {
        e = gort_new(&entry_type);
        snprintf(e->name, sizeof e->name, "%s", name);
        GORT_STORE(e->next, buckets[hash(name)]);
        GORT_STORE(buckets[hash(name)], e);
        nentries++;
    }
    GORT_STORE(e->w, gort_weak_make(img));
    gort_mutex_unlock(&mu);
    gort_add_cleanup(img, drop_entry, e); /* e does not reach img */
    return img;
}

static long cache_size(void) {
    gort_mutex_lock(&mu);
    long n = nentries;
    gort_mutex_unlock(&mu);
    return n;
}

/* The thumbnails on screen: kept alive by this array as long as the page
 * shows them (a GC object of pointers, held by a global). */
#define PAGE 50
struct page {
    struct image *thumb[PAGE];
};
GORT_TYPE(page, thumb);
static struct page *shown;

/* Shows page p: its thumbnails come from the cache. */
static __attribute__((noinline)) void show(int p) {
    struct page *pg = gort_new(&page_type);
    char name[32];
    for (int i = 0; i < PAGE; i++) {
        snprintf(name, sizeof name, "img%d.png", p * PAGE + i);
        GORT_STORE(pg->thumb[i], cache_get(name));
    }
    GORT_STORE(shown, pg); /* the previous page is dropped */
}

static struct image *pinned; /* one image the program keeps for good */

static int run(int argc, char **argv) {
    (void)argc, (void)argv;
    int bad = 0;
    GORT_STORE(pinned, cache_get("logo.png"));
    show(0);
    show(0); /* the same page again: every thumbnail is alive, all hits */
    printf("page 0 twice: %ld loads, %ld hits, %ld entries\n", loads, hits, cache_size());
    if (loads != 1 + PAGE || hits != PAGE) bad = 1;

    /* Pages 1 to 4, each replacing the last: nobody keeps the old ones. */
    for (int p = 1; p < 5; p++) show(p);
    GORT_STORE(shown, NULL);
    /* A collection frees them, their weak pointers read NULL, and their
     * cleanups (on the finalizer goroutine) drop their entries. */
    for (int i = 0; i < 20 && cache_size() > 1; i++) {
        gort_gc();
        gort_sleep(10 * 1000 * 1000);
    }
    printf("nothing shown, after collections: %ld entries, %ld dropped by cleanups\n", cache_size(),
           dropped);
    if (cache_size() > 3) bad = 1; /* the pinned one, and a conservative stray or two */

    /* The kept image is still cached: the same object, no new load. */
    long before = loads;
    struct image *again = cache_get("logo.png");
    if (again != pinned || loads != before) bad = 1;
    printf("logo.png: %s\n", again == pinned ? "still cached" : "reloaded (wrong)");

    /* Page 0 shown again: its thumbnails were collected, so loaded afresh. */
    show(0);
    printf("page 0 again: %ld loads\n", loads - before);
    if (loads - before < PAGE - 2) bad = 1;
    printf("%s\n", bad ? "FAILED" : "ok");
    return bad;
}

int main(int argc, char **argv) {
    return gort_main(run, argc, argv);
}
