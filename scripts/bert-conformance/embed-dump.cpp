// embed-dump: llama.cpp's sequence embeddings for given token ids, as `llama-embedding` computes them before
// its normalisation. Usage: embed-dump MODEL POOLING   (POOLING: model|none|mean|cls|last)
// stdin: a line of space-separated token ids per case -> stdout: a JSON array of floats per case (pooled:
// n_embd values; none: n_tokens * n_embd, token-major).
// Build (in llama.cpp's tree): g++ -O2 -std=c++17 -Iinclude -Iggml/include embed-dump.cpp -Lbuild/bin -lllama
//   -lggml -lggml-base -Wl,-rpath,$PWD/build/bin -o embed-dump
#include "llama.h"
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

static enum llama_pooling_type pooling_of(const std::string & s) {
    if (s == "none") return LLAMA_POOLING_TYPE_NONE;
    if (s == "mean") return LLAMA_POOLING_TYPE_MEAN;
    if (s == "cls") return LLAMA_POOLING_TYPE_CLS;
    if (s == "last") return LLAMA_POOLING_TYPE_LAST;
    return LLAMA_POOLING_TYPE_UNSPECIFIED;
}

static void print_floats(const float * v, size_t n) {
    putchar('[');
    for (size_t i = 0; i < n; i++) printf(i ? ",%.9g" : "%.9g", v[i]);
    printf("]\n");
}

int main(int argc, char ** argv) {
    if (argc < 3) { fprintf(stderr, "usage: embed-dump MODEL model|none|mean|cls|last\n"); return 1; }
    llama_backend_init();
    llama_log_set([](ggml_log_level, const char *, void *) {}, nullptr);
    llama_model * model = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (!model) { fprintf(stderr, "load failed\n"); return 1; }
    const int n_embd = llama_model_n_embd(model);
    std::string line;
    while (std::getline(std::cin, line)) {
        std::istringstream is(line);
        std::vector<llama_token> toks;
        int x;
        while (is >> x) toks.push_back(x);
        if (toks.empty()) continue;
        // a fresh context per case, as one llama-embedding run per prompt
        auto cp = llama_context_default_params();
        cp.embeddings = true;
        cp.pooling_type = pooling_of(argv[2]);
        cp.n_ctx = cp.n_batch = cp.n_ubatch = 512;
        cp.n_threads = cp.n_threads_batch = 1;
        if (getenv("EMBED_DUMP_NO_FA")) cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
        llama_context * ctx = llama_init_from_model(model, cp);
        if (!ctx) { fprintf(stderr, "context failed\n"); return 1; }
        const bool pooled = llama_pooling_type(ctx) != LLAMA_POOLING_TYPE_NONE;
        llama_batch b = llama_batch_init(toks.size(), 0, 1);
        for (size_t i = 0; i < toks.size(); i++) {
            b.token[i] = toks[i]; b.pos[i] = i; b.n_seq_id[i] = 1; b.seq_id[i][0] = 0; b.logits[i] = 1;
        }
        b.n_tokens = toks.size();
        if (llama_encode(ctx, b) != 0) { fprintf(stderr, "encode failed\n"); return 1; }
        if (pooled) {
            print_floats(llama_get_embeddings_seq(ctx, 0), n_embd);
        } else {
            std::vector<float> all;
            for (size_t i = 0; i < toks.size(); i++) {
                const float * e = llama_get_embeddings_ith(ctx, i);
                all.insert(all.end(), e, e + n_embd);
            }
            print_floats(all.data(), all.size());
        }
        llama_batch_free(b);
        llama_free(ctx);
    }
    llama_model_free(model);
    return 0;
}
