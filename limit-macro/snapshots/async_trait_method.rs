#[concurrency_limit(4)]
fn call<'life0, 'async_trait>(
    &'life0 self,
    request: Request,
) -> ::core::pin::Pin<
    Box<dyn ::core::future::Future<Output = Response> + ::core::marker::Send + 'async_trait>,
>
where
    'life0: 'async_trait,
    Self: 'async_trait,
{
    Box::pin(async move {
        let __self = self;
        let request = request;
        let __ret: Response = { __self.handle(request).await };
        #[allow(unreachable_code)]
        __ret
    })
}
