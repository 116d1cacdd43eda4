using System.Collections.Immutable;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;

namespace Coldmind.Tests.Layers;

/// <summary>
/// Which namespaces of an assembly use which, read from its compiled metadata: every type a type names in
/// its base type, interfaces, fields, method and property signatures, attributes and method bodies (the IL's
/// type, method and field tokens). Only types defined in the assembly itself count; framework types are not
/// edges. Namespaces are cut to the layer depth (<c>Coldmind.Runtime.Lm.Sampler</c>'s namespace is
/// <c>Coldmind.Runtime.Lm</c>).
/// </summary>
public static class LayerReferences
{
    /// <summary>(from namespace, to namespace, one example "FromType → ToType") for every cross-namespace use.</summary>
    public static IReadOnlyList<(string From, string To, string Example)> Read(string assemblyPath)
    {
        using var pe = new PEReader(File.OpenRead(assemblyPath));
        var md = pe.GetMetadataReader();
        var edges = new Dictionary<(string, string), string>();
        foreach (var handle in md.TypeDefinitions)
        {
            string from = Namespace(md, handle);
            string fromName = Name(md, handle);
            foreach (var target in Uses(md, pe, handle))
            {
                string to = Namespace(md, target);
                if (to != from && !edges.ContainsKey((from, to))) edges[(from, to)] = $"{fromName} → {Name(md, target)}";
            }
        }
        return edges.Select(e => (e.Key.Item1, e.Key.Item2, e.Value)).OrderBy(e => e.Item1).ThenBy(e => e.Item2).ToList();
    }

    /// <summary>The namespace of a type, nested types taking their outermost declaring type's.</summary>
    private static string Namespace(MetadataReader md, TypeDefinitionHandle handle)
    {
        var type = md.GetTypeDefinition(handle);
        while (type.IsNested) type = md.GetTypeDefinition(type.GetDeclaringType());
        return md.GetString(type.Namespace);
    }

    private static string Name(MetadataReader md, TypeDefinitionHandle handle)
    {
        var type = md.GetTypeDefinition(handle);
        string name = md.GetString(type.Name);
        return type.IsNested ? $"{Name(md, type.GetDeclaringType())}.{name}" : name;
    }

    private static HashSet<TypeDefinitionHandle> Uses(MetadataReader md, PEReader pe, TypeDefinitionHandle handle)
    {
        var used = new HashSet<TypeDefinitionHandle>();
        var provider = new Collector(md, used);
        var type = md.GetTypeDefinition(handle);
        AddEntity(md, provider, type.BaseType, used);
        foreach (var i in type.GetInterfaceImplementations()) AddEntity(md, provider, md.GetInterfaceImplementation(i).Interface, used);
        foreach (var a in type.GetCustomAttributes()) AddEntity(md, provider, md.GetCustomAttribute(a).Constructor, used);
        foreach (var f in type.GetFields()) md.GetFieldDefinition(f).DecodeSignature(provider, null);
        foreach (var p in type.GetProperties()) md.GetPropertyDefinition(p).DecodeSignature(provider, null);
        foreach (var m in type.GetMethods())
        {
            var method = md.GetMethodDefinition(m);
            method.DecodeSignature(provider, null);
            foreach (var a in method.GetCustomAttributes()) AddEntity(md, provider, md.GetCustomAttribute(a).Constructor, used);
            if (method.RelativeVirtualAddress == 0) continue;
            var body = pe.GetMethodBody(method.RelativeVirtualAddress);
            if (!body.LocalSignature.IsNil)
            {
                var locals = md.GetStandaloneSignature(body.LocalSignature);
                locals.DecodeLocalSignature(provider, null);
            }
            foreach (var token in Tokens(body.GetILReader())) AddEntity(md, provider, MetadataTokens.EntityHandle(token), used);
        }
        foreach (var nested in type.GetNestedTypes()) used.UnionWith(Uses(md, pe, nested));
        return used;
    }

    /// <summary>The types a token operand names: a type, or the type declaring a method or field.</summary>
    private static void AddEntity(MetadataReader md, Collector provider, EntityHandle handle, HashSet<TypeDefinitionHandle> used)
    {
        if (handle.IsNil) return;
        switch (handle.Kind)
        {
            case HandleKind.TypeDefinition: used.Add((TypeDefinitionHandle)handle); break;
            case HandleKind.TypeSpecification: md.GetTypeSpecification((TypeSpecificationHandle)handle).DecodeSignature(provider, null); break;
            case HandleKind.MethodDefinition:
                var method = md.GetMethodDefinition((MethodDefinitionHandle)handle);
                used.Add(method.GetDeclaringType());
                method.DecodeSignature(provider, null);
                break;
            case HandleKind.FieldDefinition: used.Add(md.GetFieldDefinition((FieldDefinitionHandle)handle).GetDeclaringType()); break;
            case HandleKind.MemberReference:
                var member = md.GetMemberReference((MemberReferenceHandle)handle);
                AddEntity(md, provider, member.Parent, used);
                if (member.GetKind() == MemberReferenceKind.Method) member.DecodeMethodSignature(provider, null);
                else member.DecodeFieldSignature(provider, null);
                break;
            case HandleKind.MethodSpecification:
                var spec = md.GetMethodSpecification((MethodSpecificationHandle)handle);
                AddEntity(md, provider, spec.Method, used);
                spec.DecodeSignature(provider, null);
                break;
        }
    }

    /// <summary>Every metadata token operand in a method body's IL.</summary>
    private static IEnumerable<int> Tokens(BlobReader il)
    {
        var tokens = new List<int>();
        while (il.RemainingBytes > 0)
        {
            var op = (ILOpCode)il.ReadByte();
            if ((byte)op == 0xFE) op = (ILOpCode)(0xFE00 | il.ReadByte());
            switch (OperandSize(op))
            {
                case -1: // switch: a count, then that many 4-byte targets
                    il.Offset += 4 * il.ReadInt32();
                    break;
                case -4:
                    int token = il.ReadInt32();
                    if (op != ILOpCode.Ldstr) tokens.Add(token);
                    break;
                case int n: il.Offset += n; break;
            }
        }
        return tokens;
    }

    /// <summary>Operand bytes after an opcode; -4 for a metadata token, -1 for switch (ECMA-335 III).</summary>
    private static int OperandSize(ILOpCode op) => op switch
    {
        ILOpCode.Switch => -1,
        ILOpCode.Ldstr or ILOpCode.Ldtoken or ILOpCode.Call or ILOpCode.Callvirt or ILOpCode.Newobj or ILOpCode.Jmp
            or ILOpCode.Ldftn or ILOpCode.Ldvirtftn or ILOpCode.Ldfld or ILOpCode.Ldflda or ILOpCode.Stfld or ILOpCode.Ldsfld
            or ILOpCode.Ldsflda or ILOpCode.Stsfld or ILOpCode.Box or ILOpCode.Unbox or ILOpCode.Unbox_any or ILOpCode.Castclass
            or ILOpCode.Isinst or ILOpCode.Newarr or ILOpCode.Ldelema or ILOpCode.Ldelem or ILOpCode.Stelem or ILOpCode.Ldobj
            or ILOpCode.Stobj or ILOpCode.Cpobj or ILOpCode.Initobj or ILOpCode.Mkrefany or ILOpCode.Refanyval or ILOpCode.Sizeof
            or ILOpCode.Constrained or ILOpCode.Calli => -4,
        ILOpCode.Ldc_i8 or ILOpCode.Ldc_r8 => 8,
        ILOpCode.Ldc_i4 or ILOpCode.Ldc_r4 => 4,
        ILOpCode.Ldarg or ILOpCode.Ldarga or ILOpCode.Starg or ILOpCode.Ldloc or ILOpCode.Ldloca or ILOpCode.Stloc => 2,
        ILOpCode.Ldarg_s or ILOpCode.Ldarga_s or ILOpCode.Starg_s or ILOpCode.Ldloc_s or ILOpCode.Ldloca_s or ILOpCode.Stloc_s
            or ILOpCode.Ldc_i4_s or ILOpCode.Unaligned => 1,
        _ when op.IsBranch() => op.GetBranchOperandSize(),
        _ => 0,
    };

    /// <summary>Decodes signatures, recording every type defined in this assembly that they name.</summary>
    private sealed class Collector(MetadataReader md, HashSet<TypeDefinitionHandle> used) : ISignatureTypeProvider<int, object?>
    {
        public int GetTypeFromDefinition(MetadataReader reader, TypeDefinitionHandle handle, byte rawTypeKind)
        {
            used.Add(handle);
            return 0;
        }

        public int GetTypeFromSpecification(MetadataReader reader, object? context, TypeSpecificationHandle handle, byte rawTypeKind) =>
            md.GetTypeSpecification(handle).DecodeSignature(this, context);

        public int GetTypeFromReference(MetadataReader reader, TypeReferenceHandle handle, byte rawTypeKind) => 0;
        public int GetPrimitiveType(PrimitiveTypeCode typeCode) => 0;
        public int GetSZArrayType(int elementType) => 0;
        public int GetArrayType(int elementType, ArrayShape shape) => 0;
        public int GetByReferenceType(int elementType) => 0;
        public int GetPointerType(int elementType) => 0;
        public int GetPinnedType(int elementType) => 0;
        public int GetGenericInstantiation(int genericType, ImmutableArray<int> typeArguments) => 0;
        public int GetGenericMethodParameter(object? genericContext, int index) => 0;
        public int GetGenericTypeParameter(object? genericContext, int index) => 0;
        public int GetFunctionPointerType(MethodSignature<int> signature) => 0;
        public int GetModifiedType(int modifier, int unmodifiedType, bool isRequired) => 0;
    }
}
