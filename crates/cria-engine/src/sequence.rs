//! One running request: its tokens, how far they are fed into its KV blocks, its sampler and stop rules.

use cria_sampling::{Sampler, log_softmax_top};
use tokio::sync::mpsc::UnboundedSender;

use crate::blocks::{BlockManager, root_hash};
use crate::scheduler::Need;
use crate::text::{Push, TextStream};
use crate::window::WindowTable;
use crate::{Event, FinishReason, Request, TokenLogprob, Vocab};

pub(crate) struct Sequence {
    pub slot: usize,
    /// Prompt then generated tokens.
    tokens: Vec<u32>,
    prompt_len: usize,
    /// How many of `tokens` are in the cache.
    fed: usize,
    /// The pool blocks holding its positions, in order (the block table the model reads through).
    pub blocks: Vec<u32>,
    /// The sliding-window layers' block table, where they have a pool of their own.
    pub window_blocks: WindowTable,
    /// Full blocks keyed in the prompt cache so far, and the last one's key hash (the next one's parent).
    registered: usize,
    parent: u64,
    /// Prompt tokens taken from the prompt cache rather than computed.
    cached_prompt: usize,
    max_new: usize,
    sampler: Sampler,
    text: TextStream,
    logprobs: Option<usize>,
    tx: UnboundedSender<Event>,
}

impl Sequence {
    /// A sequence for `req` in `slot`, allowed `ctx` tokens in all.
    pub fn new(req: Request, slot: usize, ctx: usize, tx: UnboundedSender<Event>) -> Self {
        let prompt_len = req.prompt.len();
        let root = root_hash(req.cache_salt.as_deref());
        let max_new = req.max_tokens.min(ctx.saturating_sub(prompt_len)).max(1);
        Sequence {
            slot,
            tokens: req.prompt,
            prompt_len,
            fed: 0,
            blocks: Vec::new(),
            window_blocks: WindowTable::default(),
            registered: 0,
            parent: root,
            cached_prompt: 0,
            max_new,
            sampler: match req.constraint {
                Some(constraint) => Sampler::new(req.sampling).with_constraint(constraint),
                None => Sampler::new(req.sampling),
            },
            text: TextStream::new(req.stop),
            logprobs: req.logprobs,
            tx,
        }
    }

    /// The prompt tokens.
    pub fn prompt(&self) -> &[u32] {
        &self.tokens[..self.prompt_len]
    }

    /// The hash chain's root: the request's salt.
    pub fn root(&self) -> u64 {
        self.parent
    }

    /// Starts from cached blocks (`found`: ids and key hashes, from [`BlockManager::lookup`]) of
    /// `block_size` positions, and the sliding-window layers' `window` table for them: their positions count
    /// as fed.
    pub fn start_from_cache(
        &mut self,
        found: &[(u32, u64)],
        window: WindowTable,
        block_size: usize,
    ) {
        self.window_blocks = window;
        if let Some(&(_, hash)) = found.last() {
            self.parent = hash;
        }
        self.blocks = found.iter().map(|f| f.0).collect();
        self.registered = found.len();
        self.fed = found.len() * block_size;
        self.cached_prompt = self.fed;
    }

    /// Goes on from a cached tail after the blocks it started from: block `id`, whose first `n` positions
    /// hold the next `n` prompt tokens ([`BlockManager::take_tail`]).
    pub fn continue_in_tail(&mut self, id: u32, n: usize) {
        self.blocks.push(id);
        self.fed += n;
        self.cached_prompt = self.fed;
    }

    /// The tokens after the full blocks, up to the last prompt token (which is always computed), and the last
    /// full block's key hash: what a cached tail may continue.
    pub fn after_full_blocks(&self, block_size: usize) -> (u64, &[u32]) {
        let end = self.prompt_len.saturating_sub(1);
        let start = (self.registered * block_size).min(end);
        (self.parent, &self.tokens[start..end])
    }

    /// The part-filled last block, when the fed positions end inside one: its id, its parent's key hash and
    /// the tokens it holds.
    pub fn tail(&self, block_size: usize) -> Option<(u32, u64, &[u32])> {
        let start = self.registered * block_size;
        let part_filled = self.fed > start && self.blocks.len() == self.registered + 1;
        part_filled.then(|| {
            (
                self.blocks[self.registered],
                self.parent,
                &self.tokens[start..self.fed],
            )
        })
    }

    /// Prompt tokens taken from the prompt cache.
    pub fn cached_prompt(&self) -> usize {
        self.cached_prompt
    }

    /// Allocates blocks (in the sliding-window layers' pool too, given its manager) until positions `..upto`
    /// have one; false when a pool has none left.
    pub fn reserve(
        &mut self,
        upto: usize,
        blocks: &mut BlockManager,
        window: Option<&mut BlockManager>,
    ) -> bool {
        while self.blocks.len() * blocks.block_size() < upto {
            match blocks.allocate() {
                Some(id) => self.blocks.push(id),
                None => return false,
            }
        }
        window.is_none_or(|w| self.window_blocks.reserve(upto, w))
    }

    /// Keys the blocks that are full and computed (in both pools), so later requests can start from them.
    pub fn register_full_blocks(
        &mut self,
        blocks: &mut BlockManager,
        mut window: Option<&mut BlockManager>,
    ) {
        let bs = blocks.block_size();
        while (self.registered + 1) * bs <= self.fed {
            let r = self.registered;
            let tokens = &self.tokens[r * bs..(r + 1) * bs];
            if let (Some(w), Some(id)) = (window.as_deref_mut(), self.window_blocks.get(r)) {
                w.register(id, self.parent, tokens);
            }
            self.parent = blocks.register(self.blocks[r], self.parent, tokens);
            self.registered += 1;
        }
    }

    pub fn need(&self) -> Need {
        if self.fed < self.prompt_len {
            Need::Prefill {
                done: self.fed,
                left: self.prompt_len - self.fed,
            }
        } else {
            Need::Decode
        }
    }

    /// Positions in the cache before the next feed.
    pub fn fed(&self) -> usize {
        self.fed
    }

    /// The next `n` tokens to feed.
    pub fn pending(&self, n: usize) -> &[u32] {
        &self.tokens[self.fed..self.fed + n]
    }

    /// True when feeding `n` more tokens leaves nothing unfed, so the step's logits are needed.
    pub fn completes_with(&self, n: usize) -> bool {
        self.fed + n == self.tokens.len()
    }

    pub fn advance(&mut self, n: usize) {
        self.fed += n;
    }

    /// Tokens in the cache.
    pub fn cached(&self) -> usize {
        self.fed
    }

    pub fn is_cancelled(&self) -> bool {
        self.tx.is_closed()
    }

    pub fn fail(&self, message: String) {
        let _ = self.tx.send(Event::Failed(message));
    }

    /// Samples from `logits`, sends the token's event; returns why it finished, if it did.
    pub fn on_logits(&mut self, logits: &[f32], vocab: &dyn Vocab) -> Option<FinishReason> {
        let id = match self.sampler.sample(logits, &self.tokens) {
            Ok(id) => id,
            Err(e) => {
                self.fail(e.to_string());
                return Some(FinishReason::Stop);
            }
        };
        let logprob = self.logprobs.map(|k| token_logprob(logits, id, k));
        self.tokens.push(id);
        if vocab.is_eog(id) {
            let rest = self.text.finish();
            self.send_text(rest, None);
            return self.done(FinishReason::Stop);
        }
        match self.text.push(vocab.token_bytes(id)) {
            Push::Stop(text) => {
                self.send_text(text, logprob);
                let which = self.text.matched_stop().unwrap_or(0);
                return self.done(FinishReason::StopSequence(which));
            }
            Push::Emit(text) => self.send(Event::Token { text, logprob }),
        }
        if self.generated() >= self.max_new {
            let rest = self.text.finish();
            self.send_text(rest, None);
            return self.done(FinishReason::Length);
        }
        None
    }

    fn generated(&self) -> usize {
        self.tokens.len() - self.prompt_len
    }

    fn send_text(&self, text: String, logprob: Option<TokenLogprob>) {
        if !text.is_empty() || logprob.is_some() {
            self.send(Event::Token { text, logprob });
        }
    }

    fn done(&self, reason: FinishReason) -> Option<FinishReason> {
        let completion_tokens = self.generated();
        self.send(Event::Done {
            reason,
            prompt_tokens: self.prompt_len,
            completion_tokens,
            cached_tokens: self.cached_prompt,
        });
        Some(reason)
    }

    fn send(&self, event: Event) {
        // A closed receiver means the client left; the engine notices at the next step.
        let _ = self.tx.send(event);
    }
}

fn token_logprob(logits: &[f32], id: u32, k: usize) -> TokenLogprob {
    let (lse, top) = log_softmax_top(logits, k);
    let logprob = logits
        .get(id as usize)
        .map_or(f32::NEG_INFINITY, |l| l - lse);
    TokenLogprob { id, logprob, top }
}
