//! Stage 0, the fast way: reads the common shapes of an `async fn` straight from its tokens
//! into the same [`Function`] that `item::parse` makes with syn, at a fraction of the cost
//! (the macro runs unoptimized in a dev build, and syn's signature parser was most of what the
//! attribute cost the compiler).
//!
//! It accepts a strict subset of what syn accepts, and returns `None` for anything else, so
//! that the reference reader takes over: the attribute accepts the same items and reports the
//! same errors either way. The subset:
//!
//! ```text
//! item     = attr* vis "async" "fn" IDENT generics? "(" params ")" ("->" type)? where? "{…}"
//! attr     = "#" "[" "::"? IDENT ("::" IDENT)* ( "(…)" | "[…]" | "{…}" | "=" LITERAL )? "]"
//! vis      = ( "pub" ( "(" ("crate" | "self" | "super") ")" )? )?
//! generics = "<" (LIFETIME (":" LIFETIME ("+" LIFETIME)*)?),* (IDENT (":" bounds)?),* ">"
//! params   = receiver? ("mut"? IDENT ":" type),*
//! receiver = "self" | "mut" "self" | "&" LIFETIME? "mut"? "self"
//! where    = "where" (LIFETIME ":" LIFETIME ("+" LIFETIME)* | type ":" bounds),+
//! bounds   = (LIFETIME | "?"? path) ("+" …)*
//! type     = "&" LIFETIME? "mut"? type | "(" type,* ")" | "[" type "]" | path
//! path     = "::"? segment ("::" IDENT args?)*
//! segment  = (IDENT | "Self") args? | "crate" | "self" | "super"
//! args     = "<" LIFETIME,* (IDENT "=" type | type),* ">"   (lifetimes first, one at least)
//! ```
//!
//! with commas between items, an optional trailing one, `IDENT` any identifier that is not a
//! keyword, and no invisible (`None`-delimited) group anywhere. The body must not start with
//! `#` (inner attributes go through syn). The differential check in `fuzz_harness` runs both
//! readers on every fuzzed item and compares the expansions.

use proc_macro2::{Delimiter, Group, Ident, Spacing, TokenStream, TokenTree};

use crate::item::{Attr, Body, Function, Input, Output, Pattern, Receiver, Sig, Tokens, Typed};

/// The item, if it is one of the shapes above.
pub(crate) fn function(item: &TokenStream) -> Option<Function> {
    let mut trees: Tokens = item.clone().into_iter().collect();
    let Some(TokenTree::Group(body)) = trees.pop() else {
        return None;
    };
    if body.delimiter() != Delimiter::Brace {
        return None;
    }
    let mut head = Cursor::new(&trees);
    let attrs = head.attrs()?;
    let start = head.pos;
    head.vis()?;
    let vis = trees[start..head.pos].to_vec();
    head.word("async")?;
    let fn_token = head.word("fn")?.span();
    let ident = head.ident()?.clone();
    let start = head.pos;
    head.generics()?;
    let generics = trees[start..head.pos].to_vec();
    let params = head.group(Delimiter::Parenthesis)?.clone();
    let output = if head.is_arrow() {
        Some(head.output()?)
    } else {
        None
    };
    let start = head.pos;
    head.where_clause()?;
    let where_clause = trees[start..head.pos].to_vec();
    if !head.at_end() {
        return None;
    }
    let inputs = inputs(&params)?;
    let stmts = body.stream();
    // Printed once, for two questions: whether the body starts with inner attributes (which
    // go through syn; an invisible group prints as its contents), and later whether it
    // contains `return`.
    let text = stmts.to_string();
    if text.trim_start().starts_with('#') {
        return None;
    }
    Some(Function {
        attrs,
        vis,
        sig: Sig {
            constness: None,
            asyncness: true,
            qualifiers: Vec::new(),
            fn_token,
            ident,
            generics,
            params,
            inputs,
            variadic: None,
            output,
            where_clause,
        },
        body: Some(Body {
            brace_span: body.span(),
            inner_attrs: Vec::new(),
            stmts,
            text: Some(text),
        }),
        semi: None,
    })
}

/// The parameters, if each is a receiver (first) or `mut? IDENT: type`.
fn inputs(params: &Group) -> Option<Vec<Input>> {
    let trees: Tokens = params.stream().into_iter().collect();
    let mut cursor = Cursor::new(&trees);
    let mut inputs = Vec::new();
    while !cursor.at_end() {
        let start = cursor.pos;
        if inputs.is_empty()
            && let Some((self_token, lends)) = cursor.receiver()
        {
            inputs.push(Input::Receiver(Receiver {
                tokens: trees[start..cursor.pos].to_vec(),
                self_token,
                lends,
            }));
        } else {
            let mutability = cursor.word("mut").cloned();
            let ident = cursor.ident()?.clone();
            let colon = cursor.colon()?.clone();
            let start = cursor.pos;
            let shared_ref = cursor.is_punct(0, '&') && !cursor.reference_is_mut();
            cursor.ty()?;
            inputs.push(Input::Typed(Typed {
                attrs: Vec::new(),
                pat: Pattern::Ident { mutability, ident },
                colon,
                ty: trees[start..cursor.pos].to_vec(),
                shared_ref,
            }));
        }
        if !cursor.comma_or_end() {
            return None;
        }
    }
    Some(inputs)
}

/// The keywords syn does not take as an identifier (`syn::ident::accept_as_ident`), sorted
/// by length so that a word is compared with few of them.
pub(crate) fn is_keyword(word: &str) -> bool {
    match word.len() {
        1 => word == "_",
        2 => matches!(word, "as" | "do" | "fn" | "if" | "in"),
        3 => matches!(
            word,
            "box" | "dyn" | "for" | "let" | "mod" | "mut" | "pub" | "ref" | "try" | "use"
        ),
        4 => matches!(
            word,
            "Self" | "else" | "enum" | "impl" | "loop" | "move" | "priv" | "self" | "true" | "type"
        ),
        5 => matches!(
            word,
            "async"
                | "await"
                | "break"
                | "const"
                | "crate"
                | "false"
                | "final"
                | "macro"
                | "match"
                | "super"
                | "trait"
                | "where"
                | "while"
                | "yield"
        ),
        6 => matches!(
            word,
            "become" | "extern" | "return" | "static" | "struct" | "typeof" | "unsafe"
        ),
        7 => matches!(word, "unsized" | "virtual"),
        8 => matches!(word, "abstract" | "continue" | "override"),
        _ => false,
    }
}

/// A token as the grammar sees it.
enum Tok {
    Word(String),
    Punct(char, Spacing),
    Group(Delimiter),
    Literal,
    /// An invisible group: nothing in the grammar.
    Invisible,
}

struct Cursor<'a> {
    trees: &'a [TokenTree],
    toks: Vec<Tok>,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(trees: &'a [TokenTree]) -> Self {
        let toks = trees
            .iter()
            .map(|tree| match tree {
                TokenTree::Ident(ident) => Tok::Word(ident.to_string()),
                TokenTree::Punct(punct) => Tok::Punct(punct.as_char(), punct.spacing()),
                TokenTree::Group(group) if group.delimiter() == Delimiter::None => Tok::Invisible,
                TokenTree::Group(group) => Tok::Group(group.delimiter()),
                TokenTree::Literal(_) => Tok::Literal,
            })
            .collect();
        Cursor {
            trees,
            toks,
            pos: 0,
        }
    }

    fn at_end(&self) -> bool {
        self.pos == self.toks.len()
    }

    fn tok(&self, ahead: usize) -> Option<&Tok> {
        self.toks.get(self.pos + ahead)
    }

    fn is_punct(&self, ahead: usize, ch: char) -> bool {
        matches!(self.tok(ahead), Some(Tok::Punct(c, _)) if *c == ch)
    }

    fn is_word(&self, ahead: usize, word: &str) -> bool {
        matches!(self.tok(ahead), Some(Tok::Word(w)) if w == word)
    }

    /// A single-character punctuation, consumed.
    fn punct(&mut self, ch: char) -> Option<()> {
        self.is_punct(0, ch).then(|| self.pos += 1)
    }

    /// `::`, consumed.
    fn path_sep(&mut self) -> Option<()> {
        self.is_path_sep().then(|| self.pos += 2)
    }

    fn is_path_sep(&self) -> bool {
        matches!(self.tok(0), Some(Tok::Punct(':', Spacing::Joint))) && self.is_punct(1, ':')
    }

    /// A `:` that does not start a `::` (which is a joint `:` before another).
    fn colon(&mut self) -> Option<&'a TokenTree> {
        if self.is_punct(0, ':') && !self.is_path_sep() {
            self.pos += 1;
            Some(&self.trees[self.pos - 1])
        } else {
            None
        }
    }

    /// `word`, consumed.
    fn word(&mut self, word: &str) -> Option<&'a Ident> {
        if !self.is_word(0, word) {
            return None;
        }
        self.pos += 1;
        match &self.trees[self.pos - 1] {
            TokenTree::Ident(ident) => Some(ident),
            _ => None,
        }
    }

    /// An identifier that is not a keyword, consumed.
    fn ident(&mut self) -> Option<&'a Ident> {
        match self.tok(0) {
            Some(Tok::Word(word)) if !is_keyword(word) => {
                self.pos += 1;
                match &self.trees[self.pos - 1] {
                    TokenTree::Ident(ident) => Some(ident),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// A group with this delimiter, consumed.
    fn group(&mut self, delimiter: Delimiter) -> Option<&'a Group> {
        match (self.tok(0), &self.trees.get(self.pos)) {
            (Some(Tok::Group(found)), Some(TokenTree::Group(group))) if *found == delimiter => {
                self.pos += 1;
                Some(group)
            }
            _ => None,
        }
    }

    /// `'name`, consumed.
    fn lifetime(&mut self) -> Option<()> {
        let name_ok = match self.tok(1) {
            Some(Tok::Word(word)) => !is_keyword(word) || word == "static" || word == "_",
            _ => false,
        };
        (matches!(self.tok(0), Some(Tok::Punct('\'', Spacing::Joint))) && name_ok)
            .then(|| self.pos += 2)
    }

    fn is_lifetime(&self) -> bool {
        matches!(self.tok(0), Some(Tok::Punct('\'', _)))
    }

    /// Past a `,`, or at the end; `false` on anything else.
    fn comma_or_end(&mut self) -> bool {
        self.at_end() || self.punct(',').is_some()
    }

    /// `#[…]`*: the function's outer attributes.
    fn attrs(&mut self) -> Option<Vec<Attr>> {
        let mut attrs = Vec::new();
        while self.is_punct(0, '#') {
            let start = self.pos;
            self.pos += 1;
            let bracket = self.group(Delimiter::Bracket)?;
            let trees: Tokens = bracket.stream().into_iter().collect();
            let mut meta = Cursor::new(&trees);
            let (instrument, cfg) = meta.meta()?;
            attrs.push(Attr {
                tokens: self.trees[start..self.pos].to_vec(),
                instrument,
                cfg,
            });
        }
        Some(attrs)
    }

    /// An attribute's content: a path, then a delimited group, or `= LITERAL`, or nothing.
    /// Returns whether the path ends in `instrument`, and whether it is `cfg`.
    fn meta(&mut self) -> Option<(bool, bool)> {
        let leading = self.path_sep().is_some();
        let mut segments = 0;
        let (instrument, cfg) = loop {
            let last = match self.tok(0) {
                Some(Tok::Word(word)) if !is_keyword(word) => (word == "instrument", word == "cfg"),
                _ => return None,
            };
            segments += 1;
            self.pos += 1;
            if self.path_sep().is_none() {
                break last;
            }
        };
        let cfg = cfg && !leading && segments == 1;
        match self.tok(0) {
            None => {}
            Some(Tok::Group(_)) => self.pos += 1,
            Some(Tok::Punct('=', _)) if matches!(self.tok(1), Some(Tok::Literal)) => self.pos += 2,
            _ => return None,
        }
        self.at_end().then_some((instrument, cfg))
    }

    /// `pub`, `pub(crate)`, `pub(self)`, `pub(super)`, or nothing.
    fn vis(&mut self) -> Option<()> {
        if self.word("pub").is_none() {
            return Some(());
        }
        if let Some(Tok::Group(Delimiter::Parenthesis)) = self.tok(0) {
            let TokenTree::Group(group) = &self.trees[self.pos] else {
                return None;
            };
            let inner: Tokens = group.stream().into_iter().collect();
            match inner.as_slice() {
                [TokenTree::Ident(ident)]
                    if ident == "crate" || ident == "self" || ident == "super" =>
                {
                    self.pos += 1;
                }
                _ => return None,
            }
        }
        Some(())
    }

    /// `<…>` after the function's name: lifetimes first, then type parameters with bounds.
    fn generics(&mut self) -> Option<()> {
        if self.punct('<').is_none() {
            return Some(());
        }
        let mut types = false;
        loop {
            if self.is_lifetime() && !types {
                self.lifetime()?;
                if self.colon().is_some() {
                    self.lifetime_bounds()?;
                }
            } else {
                types = true;
                self.ident()?;
                if self.colon().is_some() {
                    self.bounds()?;
                }
            }
            if self.punct('>').is_some() {
                return Some(());
            }
            self.punct(',')?;
            if self.punct('>').is_some() {
                return Some(());
            }
        }
    }

    /// `'a + 'b`: at least one.
    fn lifetime_bounds(&mut self) -> Option<()> {
        self.lifetime()?;
        while self.punct('+').is_some() {
            self.lifetime()?;
        }
        Some(())
    }

    /// `'a + ?Sized + Trait<T>`: at least one.
    fn bounds(&mut self) -> Option<()> {
        loop {
            if self.is_lifetime() {
                self.lifetime()?;
            } else {
                self.punct('?');
                self.path()?;
            }
            if self.punct('+').is_none() {
                return Some(());
            }
        }
    }

    /// A receiver, followed by `,` or the end: its `self`, and whether it lends. Consumed
    /// only if it is one.
    fn receiver(&mut self) -> Option<(Ident, bool)> {
        let start = self.pos;
        let found = self.receiver_here();
        if found.is_none() {
            self.pos = start;
        }
        found
    }

    fn receiver_here(&mut self) -> Option<(Ident, bool)> {
        let reference = self.punct('&').is_some();
        if reference && self.is_lifetime() {
            self.lifetime()?;
        }
        let mutable = self.word("mut").is_some();
        let self_token = self.word("self")?.clone();
        (self.at_end() || self.is_punct(0, ',')).then_some((self_token, reference && !mutable))
    }

    /// Whether the reference type at the cursor is `&mut` (after its lifetime, if any).
    fn reference_is_mut(&self) -> bool {
        let after = if matches!(self.tok(1), Some(Tok::Punct('\'', _))) {
            3
        } else {
            1
        };
        self.is_word(after, "mut")
    }

    fn is_arrow(&self) -> bool {
        matches!(self.tok(0), Some(Tok::Punct('-', Spacing::Joint))) && self.is_punct(1, '>')
    }

    /// `-> type`.
    fn output(&mut self) -> Option<Output> {
        let arrow = self.trees[self.pos..self.pos + 2].to_vec();
        self.pos += 2;
        let start = self.pos;
        self.ty()?;
        let ty = &self.trees[start..self.pos];
        Some(Output {
            arrow,
            unit: is_unit(ty),
            ty: ty.to_vec(),
            never: false,
            inferred: None,
            resolves_to: None,
        })
    }

    /// `where` and its predicates, or nothing.
    fn where_clause(&mut self) -> Option<()> {
        if self.word("where").is_none() {
            return Some(());
        }
        loop {
            if self.is_lifetime() {
                self.lifetime()?;
                self.colon()?;
                self.lifetime_bounds()?;
            } else {
                self.ty()?;
                self.colon()?;
                self.bounds()?;
            }
            if self.at_end() {
                return Some(());
            }
            self.punct(',')?;
            if self.at_end() {
                return Some(());
            }
        }
    }

    /// A type.
    fn ty(&mut self) -> Option<()> {
        match self.tok(0)? {
            Tok::Punct('&', _) => {
                self.pos += 1;
                if self.is_lifetime() {
                    self.lifetime()?;
                }
                self.word("mut");
                self.ty()
            }
            Tok::Group(Delimiter::Parenthesis) => {
                let group = self.group(Delimiter::Parenthesis)?;
                let trees: Tokens = group.stream().into_iter().collect();
                let mut inner = Cursor::new(&trees);
                while !inner.at_end() {
                    inner.ty()?;
                    if !inner.comma_or_end() {
                        return None;
                    }
                }
                Some(())
            }
            Tok::Group(Delimiter::Bracket) => {
                let group = self.group(Delimiter::Bracket)?;
                let trees: Tokens = group.stream().into_iter().collect();
                let mut inner = Cursor::new(&trees);
                inner.ty()?;
                inner.at_end().then_some(())
            }
            _ => self.path(),
        }
    }

    /// A path, as a type or a trait bound.
    fn path(&mut self) -> Option<()> {
        self.path_sep();
        match self.tok(0) {
            Some(Tok::Word(word)) if word == "crate" || word == "self" || word == "super" => {
                self.pos += 1;
            }
            Some(Tok::Word(word)) if word == "Self" => {
                self.pos += 1;
                self.generic_args()?;
            }
            _ => {
                self.ident()?;
                self.generic_args()?;
            }
        }
        while self.path_sep().is_some() {
            self.ident()?;
            self.generic_args()?;
        }
        Some(())
    }

    /// `<…>` after a path segment, or nothing: lifetimes first (syn prints them first).
    fn generic_args(&mut self) -> Option<()> {
        if self.punct('<').is_none() {
            return Some(());
        }
        let mut types = false;
        loop {
            if self.is_lifetime() && !types {
                self.lifetime()?;
            } else if self.is_lifetime() {
                return None;
            } else if matches!(self.tok(0), Some(Tok::Word(word)) if !is_keyword(word))
                && self.is_punct(1, '=')
            {
                types = true;
                self.pos += 2;
                self.ty()?;
            } else {
                types = true;
                self.ty()?;
            }
            if self.punct('>').is_some() {
                return Some(());
            }
            self.punct(',')?;
            if self.punct('>').is_some() {
                return Some(());
            }
        }
    }
}

/// Whether a type read by [`Cursor::ty`] is `()`, however parenthesized.
fn is_unit(ty: &[TokenTree]) -> bool {
    let [TokenTree::Group(group)] = ty else {
        return false;
    };
    if group.delimiter() != Delimiter::Parenthesis {
        return false;
    }
    let inner: Tokens = group.stream().into_iter().collect();
    match inner.as_slice() {
        [] => true,
        // `(T)` is `T`; `(T,)` is a tuple.
        [TokenTree::Group(_)] => is_unit(&inner),
        _ => false,
    }
}
