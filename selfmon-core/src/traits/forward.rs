//! `Arc<T>` and `Box<T>` implement every trait their contents implement (object_store's
//! `as_ref_impl!`), so a host can pass either where a trait is expected.

/// Implements a trait for `Arc<T>` and `Box<T>` by forwarding every method to `T`.
///
/// List the async methods first, then the plain ones, each as in the trait. Every method must be
/// listed, those with a default body too: an unlisted default would run instead of the wrapped
/// value's own implementation.
macro_rules! forward {
    ($trait:ident {
        $(async fn $an:ident(&self $(, $aa:ident: $at:ty)* $(,)?) $(-> $ar:ty)?;)*
        $(fn $sn:ident(&self $(, $sa:ident: $st:ty)* $(,)?) -> $sr:ty;)*
    }) => {
        $crate::traits::forward::forward!(@ptr [::std::sync::Arc], $trait {
            $(async fn $an(&self $(, $aa: $at)*) $(-> $ar)?;)*
            $(fn $sn(&self $(, $sa: $st)*) -> $sr;)*
        });
        $crate::traits::forward::forward!(@ptr [::std::boxed::Box], $trait {
            $(async fn $an(&self $(, $aa: $at)*) $(-> $ar)?;)*
            $(fn $sn(&self $(, $sa: $st)*) -> $sr;)*
        });
    };
    (@ptr [$($ptr:tt)*], $trait:ident {
        $(async fn $an:ident(&self $(, $aa:ident: $at:ty)*) $(-> $ar:ty)?;)*
        $(fn $sn:ident(&self $(, $sa:ident: $st:ty)*) -> $sr:ty;)*
    }) => {
        #[::async_trait::async_trait]
        impl<T: $trait + ?Sized> $trait for $($ptr)*<T> {
            $(
                async fn $an(&self $(, $aa: $at)*) $(-> $ar)? {
                    (**self).$an($($aa),*).await
                }
            )*
            $(
                fn $sn(&self $(, $sa: $st)*) -> $sr {
                    (**self).$sn($($sa),*)
                }
            )*
        }
    };
}

pub(crate) use forward;
